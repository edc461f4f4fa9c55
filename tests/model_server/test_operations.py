"""Operations: batching under load, metrics, logs and privacy, graceful shutdown, internal errors."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import threading
from pathlib import Path

import pytest

from model_server.client import RestClient
from tests.model_server.ms_helpers import MODEL, WARMUP_TEXTS, call_json, copy_version, metric_samples, wait_for

SECRET = "zebracrossing4711"  # a word no log line may contain unless it is the (opt-in) request log


def test_concurrent_requests_are_batched(spawn, toy_models, tmp_path: Path) -> None:
    base = tmp_path / MODEL
    copy_version(toy_models["v1"], base, 1)
    params = tmp_path / "batching.txt"
    params.write_text(
        "max_batch_size { value: 8 }\nbatch_timeout_micros { value: 200000 }\nnum_batch_threads { value: 1 }\n"
    )
    server = spawn(
        model_name=MODEL,
        model_base_path=str(base),
        extra_args=["--enable_batching", f"--batching_parameters_file={params}"],
    )
    server.wait_for_model(MODEL, timeout=180)
    barrier = threading.Barrier(8)
    results: list[str] = []

    def client() -> None:
        with server.rest_client() as rest:
            barrier.wait(30)
            results.append(rest.predict_texts(MODEL, ["good"], input_name="text")[0]["label"])

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == ["positive"] * 8
    with server.rest_client() as rest:
        text = rest.metrics_text()
    labels = (("model", MODEL),)
    executions = metric_samples(text, "model_server_batch_size_count")[labels]
    instances = metric_samples(text, "model_server_batch_size_sum")[labels]
    assert instances == 8  # warm-up requests run outside the batcher and are not counted
    assert executions < instances, (executions, instances)  # at least one model call scored several requests
    assert metric_samples(text, "model_server_warmup_requests_total")[labels] == len(WARMUP_TEXTS)


def test_metrics_endpoint(shared_server, rest: RestClient) -> None:
    call_json(rest, "POST", f"/v1/models/{MODEL}:predict", {"instances": ["good", "bad"]})
    call_json(rest, "POST", "/v1/models/no_such_model:predict", {"instances": ["good"]})
    status, headers, data = rest.request("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    text = data.decode()
    for name in (
        "model_server_requests_total",
        "model_server_request_errors_total",
        "model_server_request_latency_seconds_bucket",
        "model_server_batch_size_bucket",
        "model_server_model_run_seconds_bucket",
        "model_server_batch_queue_depth",
        "model_server_loaded_versions",
        "model_server_model_load_seconds_bucket",
        "model_server_inflight_requests",
    ):
        assert f"\n{name}" in text, name
    predicts = metric_samples(text, "model_server_requests_total")
    assert predicts[(("code", "OK"), ("method", "predict"), ("model", MODEL), ("protocol", "rest"))] >= 1
    assert predicts[(("code", "NOT_FOUND"), ("method", "predict"), ("model", "_other"), ("protocol", "rest"))] >= 1
    assert "no_such_model" not in text  # unknown names do not become label values
    assert metric_samples(text, "model_server_loaded_versions")[(("model", MODEL),)] == 1
    assert metric_samples(text, "model_server_batch_queue_depth")[(("model", MODEL),)] == 0
    assert rest.request("GET", "/monitoring/prometheus/metrics")[0] == 200  # TF Serving's path works too


def test_logs_keep_text_private(shared_server, rest: RestClient) -> None:
    text = f"{SECRET} great film! mail me at critic@example.com, see www.example.org/review or call +44 20 7946 0958"
    status, _ = call_json(
        rest,
        "POST",
        f"/v1/models/{MODEL}:predict",
        {"instances": [text, "dull"]},
        headers={"X-Request-Id": "privacy-check"},
    )
    assert status == 200
    call_json(rest, "POST", f"/v1/models/{MODEL}:predict", {"instances": [f"{SECRET}", ""]})  # a 400
    work: Path = shared_server.work_dir

    # The opt-in request log: text with PII masked, predictions, the training feature name, owner-only file.
    request_log = work / "requests.jsonl"

    def logged():
        if not request_log.exists():
            return None
        lines = [json.loads(line) for line in request_log.read_text().splitlines()]
        return [r for r in lines if r["request_id"] == "privacy-check"] or None

    records = wait_for(logged, what="request log records")
    assert [r["review"] for r in records] == [
        f"{SECRET} great film! mail me at [EMAIL], see [URL] or call [PHONE]",
        "dull",
    ]
    assert [r["label"] for r in records] == ["positive", "negative"]
    assert {r["model"] for r in records} == {MODEL} and {r["version"] for r in records} == {1}
    assert stat.S_IMODE(os.stat(request_log).st_mode) == 0o600
    raw = request_log.read_text()
    assert "critic@" not in raw and "example.org" not in raw and "7946" not in raw

    # The access log: one JSON object per request with sizes, timings, outcome; never the text.
    access_log = work / "access.jsonl"
    entries = [json.loads(line) for line in access_log.read_text().splitlines()]
    mine = [e for e in entries if e["request_id"] == "privacy-check"]
    assert len(mine) == 1
    entry = mine[0]
    assert entry["status"] == 200 and entry["code"] == "OK" and entry["instances"] == 2
    assert entry["model"] == MODEL and entry["version"] == 1 and entry["signature"] == "serving_default"
    assert entry["request_bytes"] > 0 and entry["response_bytes"] > 0 and entry["duration_ms"] >= 0
    assert any(e["status"] == 400 and e["code"] == "INVALID_ARGUMENT" for e in entries)
    for name in ("access.jsonl", "server.log"):
        assert SECRET not in (work / name).read_text(), name


def test_the_server_process_gets_this_environment_unchanged(shared_server) -> None:
    """start_server adds no PYTHONPATH (the package is installed) and no Keras switch (the server needs no Keras 2)."""
    with open(f"/proc/{shared_server.pid}/environ", "rb") as f:
        child = dict(item.decode().split("=", 1) for item in f.read().split(b"\0") if b"=" in item)
    for name in ("PYTHONPATH", "TF_USE_LEGACY_KERAS"):
        assert child.get(name) == os.environ.get(name), name


def test_graceful_shutdown_finishes_in_flight_requests(spawn, toy_models, tmp_path: Path) -> None:
    base = tmp_path / MODEL
    copy_version(toy_models["v1"], base, 1)
    params = tmp_path / "batching.txt"
    # A request waits up to 30 s for companions: it is certainly in flight when SIGTERM arrives.
    params.write_text("max_batch_size { value: 64 }\nbatch_timeout_micros { value: 30000000 }\n")
    server = spawn(
        model_name=MODEL,
        model_base_path=str(base),
        extra_args=["--enable_batching", f"--batching_parameters_file={params}", "--shutdown_grace_seconds=20"],
    )
    server.wait_for_model(MODEL, timeout=180)
    outcome: dict = {}

    def in_flight() -> None:
        with server.rest_client(timeout=60) as rest:
            outcome["status"], outcome["doc"] = call_json(
                rest, "POST", f"/v1/models/{MODEL}:predict", {"instances": ["good"]}
            )

    thread = threading.Thread(target=in_flight)
    thread.start()
    with server.rest_client() as probe:
        wait_for(
            lambda: (
                metric_samples(probe.metrics_text(), "model_server_batch_queue_depth").get((("model", MODEL),)) == 1
            ),
            what="the request to be queued",
        )
    server.process.send_signal(signal.SIGTERM)
    thread.join(60)
    assert outcome["status"] == 200 and outcome["doc"]["predictions"][0]["label"] == "positive"
    assert server.process.wait(60) == 0
    log = server.log_text()
    assert "SIGTERM received: shutting down gracefully" in log and "shutdown complete" in log
    with pytest.raises(OSError):
        RestClient(server.rest_url, timeout=5).request("GET", "/healthz")


def test_rest_requests_have_a_deadline(spawn, toy_models, tmp_path: Path) -> None:
    base = tmp_path / MODEL
    copy_version(toy_models["v1"], base, 1)
    params = tmp_path / "batching.txt"
    params.write_text("max_batch_size { value: 64 }\nbatch_timeout_micros { value: 30000000 }\n")
    server = spawn(
        model_name=MODEL,
        model_base_path=str(base),
        extra_args=["--enable_batching", f"--batching_parameters_file={params}", "--rest_api_timeout_in_ms=300"],
    )
    server.wait_for_model(MODEL, timeout=180)
    with server.rest_client() as rest:
        status, doc = call_json(rest, "POST", f"/v1/models/{MODEL}:predict", {"instances": ["good"]})
        assert status == 504
        assert doc["error"] == "The request did not complete within 300 ms (--rest_api_timeout_in_ms)"
        assert call_json(rest, "GET", f"/v1/models/{MODEL}")[0] == 200


def test_a_taken_port_fails_start_up_cleanly(toy_models, tmp_path: Path) -> None:
    import socket

    from model_server.process import start_server

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(
            RuntimeError,
            match=rf"exited with 1 during start-up:[\s\S]*cannot bind REST to "
            rf"127.0.0.1:{port}",
        ):
            start_server(
                model_name=MODEL, model_base_path=str(tmp_path), grpc=False, extra_args=[f"--rest_api_port={port}"]
            )


def test_unexpected_errors_are_500_with_a_request_id_and_no_details(caplog) -> None:
    """Drive the REST transport in-process with a data plane that fails in an unplanned way."""
    from aiohttp.test_utils import TestClient, TestServer

    from model_server.logs import AccessLog
    from model_server.metrics import Metrics
    from model_server.rest import RestTransport

    class ExplodingPlane:
        def metric_model_label(self, name):
            return name or "_other"

        def model_status(self, ref):
            raise RuntimeError("secret internal detail /etc/passwd")

    transport = RestTransport(ExplodingPlane(), Metrics(), AccessLog(""), 1024, 5.0)

    async def main():
        async with TestClient(TestServer(transport.build_app())) as client:
            response = await client.get("/v1/models/m", headers={"X-Request-Id": "boom-1"})
            return response.status, response.headers["Content-Type"], await response.json()

    status, content_type, doc = asyncio.run(main())
    assert status == 500 and content_type == "application/json"
    assert doc == {"error": "Internal error; request id boom-1"}
    assert any("boom-1" in r.getMessage() and r.exc_info for r in caplog.records)  # the trace stays server-side
