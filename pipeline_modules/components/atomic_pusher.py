"""Pusher executor that never exposes a half-written version directory.

Stock Pusher copies straight into `<base>/<version>/` (saved_model.pb last), so a model server polling the base
directory can see a version that is still being written. This executor copies into a hidden sibling
(`.<version>.incomplete`, which servers ignore because it is not an integer) and renames it into place: on a local
or POSIX file system the version appears complete or not at all. Versions are Unix timestamps, bumped past the
newest existing version so two pushes in the same second still produce increasing versions.
"""

from __future__ import annotations

import os
import time
from typing import Any

from absl import logging
from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils


def next_version(base_directory: str, now: float | None = None) -> int:
    existing = (
        [int(name) for name in fileio.listdir(base_directory) if name.isdigit()]
        if fileio.exists(base_directory)
        else []
    )
    return max([int(now if now is not None else time.time())] + [v + 1 for v in existing])


def publish_atomically(model_path: str, base_directory: str, version: int) -> str:
    """Copy `model_path` to `<base_directory>/<version>` so that it appears in one step."""
    fileio.makedirs(base_directory)
    final = os.path.join(base_directory, str(version))
    staging = os.path.join(base_directory, f".{version}.incomplete")
    if fileio.exists(staging):
        fileio.rmtree(staging)
    io_utils.copy_dir(model_path, staging, deny_regex_patterns=[r"saved_model\.pb"])
    io_utils.copy_file(os.path.join(model_path, "saved_model.pb"), os.path.join(staging, "saved_model.pb"))
    fileio.rename(staging, final)
    return final


class Executor(pusher_executor.Executor):
    """Pusher's executor with an atomic, monotonic file-system push; everything else is stock."""

    def Do(  # noqa: N802 - TFX executor API
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            logging.warning("Pusher: the model is not blessed; nothing was pushed.")
            self._MarkNotPushed(model_push)
            return
        model_path = self.GetModelPath(input_dict)
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        if destination.WhichOneof("destination") != "filesystem":
            raise NotImplementedError("This Pusher pushes to a file system destination only.")
        base_directory = destination.filesystem.base_directory
        version = next_version(base_directory)
        serving_path = publish_atomically(model_path, base_directory, version)
        logging.info("Pusher: model version %d written to %s", version, serving_path)
        io_utils.copy_dir(model_path, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=str(version))
