"""``--enable_per_model_batching_parameters``: as TF Serving, a version is batched only when its directory holds
``batching_params.pbtxt``, with those parameters (the threads stay global); a bad file fails that version's load."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from model_server.batching import PER_MODEL_BATCHING_FILE, BatchScheduler, DirectRunner, read_per_model_batching
from model_server.config import parse_args
from model_server.metrics import Metrics
from model_server.model import ModelLoadError, ServableModel
from model_server.model_config import BatchingOptions
from model_server.process import ServerProcess
from tests.model_server.ms_helpers import copy_version

SLOW = BatchingOptions(max_batch_size=8, batch_timeout_micros=60_000_000, num_batch_threads=1)


class Recorder:
    """A fake servable: doubles ``x`` and records the batches it was given."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.batches: list[list[float]] = []
        self._lock = threading.Lock()

    def predict(self, signature: str, inputs: Any) -> dict[str, np.ndarray]:
        with self._lock:
            self.batches.append(inputs["x"].tolist())
        return {"y": inputs["x"] * 2}


def _x(*values: float) -> dict[str, np.ndarray]:
    return {"x": np.array(values, dtype=np.float32)}


def test_flag_reaches_server_options(tmp_path: Path) -> None:
    o = parse_args([f"--model_base_path={tmp_path}", "--enable_batching", "--enable_per_model_batching_parameters"])
    assert o.enable_per_model_batching_parameters and "enable_per_model_batching_parameters" not in o.not_applied_flags


def test_read_per_model_batching(tmp_path: Path) -> None:
    assert read_per_model_batching(str(tmp_path)) is None
    (tmp_path / PER_MODEL_BATCHING_FILE).write_text("max_batch_size { value: 4 }\nallowed_batch_sizes: [2, 4]\n")
    options = read_per_model_batching(str(tmp_path))
    assert options is not None and (options.max_batch_size, options.allowed_batch_sizes) == (4, (2, 4))
    (tmp_path / PER_MODEL_BATCHING_FILE).write_text("max_batch_size: 4\n")  # not a wrapper message
    with pytest.raises(ModelLoadError, match=PER_MODEL_BATCHING_FILE):
        read_per_model_batching(str(tmp_path))
    (tmp_path / PER_MODEL_BATCHING_FILE).write_text("max_batch_size { value: 3 }\nallowed_batch_sizes: [2]\n")
    with pytest.raises(ModelLoadError, match="must equal max_batch_size"):
        read_per_model_batching(str(tmp_path))


def test_each_version_batches_with_its_own_parameters_or_not_at_all() -> None:
    metrics = Metrics()
    direct = DirectRunner(2, metrics)
    scheduler = BatchScheduler(SLOW, metrics)
    scheduler.enable_per_model_parameters(direct)
    small, padded, plain = Recorder("small"), Recorder("padded"), Recorder("plain")
    scheduler.set_model_options(
        cast(ServableModel, small), BatchingOptions(max_batch_size=2, batch_timeout_micros=60_000_000)
    )
    scheduler.set_model_options(
        cast(ServableModel, padded),
        BatchingOptions(max_batch_size=4, batch_timeout_micros=0, allowed_batch_sizes=(4,)),
    )

    async def main() -> list[Any]:
        def run(model: Recorder, *values: float) -> Any:
            return scheduler.run(cast(ServableModel, model), "s", _x(*values), len(values))

        # With the global parameters (max 8, 60 s) none of these would leave within the deadline.
        calls = [run(small, 1), run(small, 2), run(padded, 1, 2, 3), run(plain, 5), run(plain, 6)]
        return list(await asyncio.wait_for(asyncio.gather(*calls), timeout=20))

    results = asyncio.run(main())
    scheduler.stop()
    direct.stop()
    assert [r["y"].tolist() for r in results] == [[2.0], [4.0], [2.0, 4.0, 6.0], [10.0], [12.0]]
    assert small.batches == [[1.0, 2.0]]  # a full batch of its max_batch_size 2
    assert padded.batches == [[1.0, 2.0, 3.0, 3.0]]  # padded to its allowed size 4
    assert sorted(plain.batches) == [[5.0], [6.0]]  # no batching_params.pbtxt: one call per request


def test_set_model_options_needs_the_flag() -> None:
    scheduler = BatchScheduler(SLOW, Metrics())
    try:
        with pytest.raises(RuntimeError, match="not enabled"):
            scheduler.set_model_options(cast(ServableModel, Recorder("m")), None)
    finally:
        scheduler.stop()


def test_a_server_reads_batching_params_from_each_version(
    spawn: Callable[..., ServerProcess], toy_models: dict[str, str], tmp_path: Path
) -> None:
    names = ("batched", "plain", "broken")
    for name in names:
        version = copy_version(toy_models["v1"], tmp_path / name, 1)
        if name == "batched":
            (version / PER_MODEL_BATCHING_FILE).write_text("max_batch_size { value: 4 }\n")
        elif name == "broken":
            (version / PER_MODEL_BATCHING_FILE).write_text("max_batch_size { value: -1 }\n")
    config = tmp_path / "models.config"
    entries = " ".join(f'config {{ name: "{n}" base_path: "{tmp_path / n}" }}' for n in names)
    config.write_text(f"model_config_list {{ {entries} }}\n")
    server = spawn(
        model_config_file=str(config),
        extra_args=["--enable_batching", "--enable_per_model_batching_parameters"],
        grpc=False,
    )
    for name in ("batched", "plain"):
        server.wait_for_model(name, timeout=180)
    with server.rest_client() as rest:
        for name in ("batched", "plain"):
            assert rest.predict_texts(name, ["great", "awful"], input_name="text")[1]["label"] == "negative"
        status = rest.model_status("broken")["model_version_status"][0]
    assert status["state"] == "END" and "max_batch_size must be positive" in status["status"]["error_message"]
    log = server.log_text()
    assert "model batched version 1: batched with its batching_params.pbtxt" in log
    assert "model plain version 1: not batched (no batching_params.pbtxt)" in log
