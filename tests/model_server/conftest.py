"""Fixtures for the model server tests: toy SavedModels built once, and real server processes on free ports.

Servers are started with ``model_server.process.start_server`` (the same helper the pipeline's infrastructure
validation and the benchmark use): the server binds port 0 itself and reports the port, so there is no race.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from model_server.client import RestClient
from model_server.process import ServerProcess, start_server
from tests.model_server.ms_helpers import MODEL, V1_BIAS, V2_BIAS, WARMUP_TEXTS, copy_version


@pytest.fixture(scope="session")
def toy_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two versions' worth of SavedModels (bias 0 with a warm-up file, bias 2), built once per session."""
    from tests.doubles.toy_model import build_toy_model

    root = tmp_path_factory.mktemp("toy_models")
    return {
        "v1": build_toy_model(str(root / "v1"), bias=V1_BIAS, warmup_texts=WARMUP_TEXTS),
        # version 2 uses a TensorFlow Text op, as the pipeline's models do: the server must register it to load it
        "v2": build_toy_model(str(root / "v2"), bias=V2_BIAS, text_ops=True),
    }


@pytest.fixture
def spawn() -> Iterator[Callable[..., ServerProcess]]:
    """Start servers for one test; every one is stopped (SIGTERM) at the end."""
    started: list[ServerProcess] = []

    def _spawn(**kwargs: Any) -> ServerProcess:
        server = start_server(**kwargs)
        started.append(server)
        return server

    yield _spawn
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def shared_server(toy_models: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the API tests: version 1 of MODEL, batching on, small limits, both logs to files."""
    work = tmp_path_factory.mktemp("shared_server")
    base = work / "models" / MODEL
    copy_version(toy_models["v1"], base, 1)
    batching = work / "batching.txt"
    batching.write_text(
        "# small batches, short wait: the API tests run one request at a time\n"
        "max_batch_size { value: 16 }\nbatch_timeout_micros { value: 1000 }\nnum_batch_threads { value: 2 }\n"
        "max_enqueued_batches { value: 100 }\n"
    )
    server = start_server(
        model_name=MODEL,
        model_base_path=str(base),
        extra_args=[
            "--enable_batching",
            f"--batching_parameters_file={batching}",
            "--max_request_bytes=65536",
            "--max_instances_per_request=64",
            f"--access_log_path={work / 'access.jsonl'}",
            f"--request_log_path={work / 'requests.jsonl'}",
            "--file_system_poll_wait_seconds=0.2",
        ],
        log_path=str(work / "server.log"),
    )
    server.wait_for_model(MODEL, timeout=180)
    server.work_dir = work  # type: ignore[attr-defined]
    yield server
    assert server.stop() == 0


@pytest.fixture
def rest(shared_server: ServerProcess) -> Iterator[RestClient]:
    with shared_server.rest_client() as client:
        yield client
