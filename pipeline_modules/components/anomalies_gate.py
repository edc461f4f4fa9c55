"""Stops the pipeline when ExampleValidator found anomalies, naming them, unless told to carry on.

TFX's ExampleValidator records anomalies but never fails, so a pipeline would happily train on data that broke its
schema. This component sits between ExampleValidator and Transform/Trainer and turns anomalies into a stop.
"""

import logging
import os
from typing import TypedDict

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import ExampleAnomalies

logger = logging.getLogger(__name__)


class GateResult(TypedDict):
    anomaly_count: int


class DataAnomaliesError(RuntimeError):
    """The data broke the schema; the message lists every anomaly by split and feature."""


def describe_anomalies(anomalies_by_split: dict[str, anomalies_pb2.Anomalies]) -> list[str]:
    lines = []
    for split, anomalies in sorted(anomalies_by_split.items()):
        for feature, info in sorted(anomalies.anomaly_info.items()):
            reason = "; ".join(r.description or r.short_description for r in info.reason) or info.description
            lines.append(f"[{split}] feature '{feature}': {info.short_description} ({reason})")
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            lines.append(f"[{split}] dataset: {info.short_description} ({info.description})")
    return lines


def read_anomalies(artifact: ExampleAnomalies) -> dict[str, anomalies_pb2.Anomalies]:
    found = {}
    for split in artifact_utils.decode_split_names(artifact.split_names):
        path = os.path.join(artifact_utils.get_split_uri([artifact], split), "SchemaDiff.pb")
        with fileio.open(path, "rb") as handle:
            found[split] = anomalies_pb2.Anomalies.FromString(handle.read())
    return found


def check_anomalies(anomalies_by_split: dict[str, anomalies_pb2.Anomalies], *, allow_anomalies: bool) -> int:
    """The number of anomalies; raises `DataAnomaliesError` listing them unless `allow_anomalies`."""
    problems = describe_anomalies(anomalies_by_split)
    if not problems:
        logger.info("AnomaliesGate: no anomalies in splits %s", ", ".join(sorted(anomalies_by_split)))
        return 0
    listing = "\n  - ".join(problems)
    if allow_anomalies:
        logger.warning(
            "AnomaliesGate: continuing despite %d anomalies (allow_anomalies):\n  - %s", len(problems), listing
        )
        return len(problems)
    raise DataAnomaliesError(
        f"ExampleValidator found {len(problems)} anomalies; stopping before Transform and Trainer:\n  - {listing}\n"
        "Fix the data or the schema (pipeline_modules/schema/schema.pbtxt), or rerun with --allow-anomalies true."
    )


@tfx.dsl.components.component
def AnomaliesGate(  # noqa: N802 - TFX component names are classes
    anomalies: tfx.dsl.components.InputArtifact[ExampleAnomalies],
    allow_anomalies: tfx.dsl.components.Parameter[bool] = False,
) -> GateResult:
    """Fails the run with the list of anomalies, or logs them and passes when `allow_anomalies` is set."""
    return {"anomaly_count": check_anomalies(read_anomalies(anomalies), allow_anomalies=allow_anomalies)}
