"""Versions on a real server: readiness before the first version, hot swap under traffic, broken versions,
pinned versions and labels from a model config file, and config reloads."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import grpc
import pytest
from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc

from model_server.client import ModelServerError
from tests.model_server.ms_helpers import (
    MODEL,
    V1_BIAS,
    V2_BIAS,
    call_json,
    copy_version,
    expected_probability,
    metric_samples,
    wait_for,
    write_broken_version,
)

TEXT = "great"
P1 = expected_probability(TEXT, V1_BIAS)
P2 = expected_probability(TEXT, V2_BIAS)


def _version_of(probability: float) -> int:
    """Tell the versions apart by their answers: REST responses carry no version."""
    if abs(probability - P1) < 1e-6:
        return 1
    if abs(probability - P2) < 1e-6:
        return 2
    raise AssertionError(f"unexpected probability {probability}")


def test_hot_swap_under_traffic_and_a_broken_version(spawn, toy_models, tmp_path: Path) -> None:
    base = tmp_path / MODEL
    base.mkdir()
    server = spawn(model_name=MODEL, model_base_path=str(base), extra_args=["--file_system_poll_wait_seconds=0.1"])
    rest = server.rest_client()

    # No version yet: alive, not ready, and the status API says why.
    assert call_json(rest, "GET", "/healthz")[0] == 200
    status, doc = call_json(rest, "GET", "/readyz")
    assert status == 503 and doc["error"] == f"Not ready: no version available yet for {MODEL}"
    assert call_json(rest, "GET", f"/v1/models/{MODEL}") == (
        404,
        {"error": f"Could not find any versions of model {MODEL}"},
    )
    with pytest.raises(TimeoutError, match="not AVAILABLE within"):
        server.wait_for_model(MODEL, timeout=0.5)

    copy_version(toy_models["v1"], base, 1)
    assert server.wait_for_model(MODEL, timeout=180) == 1
    assert call_json(rest, "GET", "/readyz")[0] == 200

    # Traffic from two threads (REST and gRPC) while version 2 is pushed.
    stop = threading.Event()
    seen: dict[str, list[int]] = {"rest": [], "grpc": []}
    errors: list[str] = []

    def rest_traffic() -> None:
        with server.rest_client() as client:
            while not stop.is_set():
                try:
                    [prediction] = client.predict_texts(MODEL, [TEXT], input_name="text")
                    seen["rest"].append(_version_of(prediction["probability"]))
                except Exception as exc:  # noqa: BLE001 - any failure is what the test counts
                    errors.append(repr(exc))

    def grpc_traffic() -> None:
        with server.grpc_client() as client:
            while not stop.is_set():
                try:
                    response = client.predict(MODEL, {"text": [TEXT.encode()]})
                    version = response.model_spec.version.value
                    assert version == _version_of(response.outputs["probability"].float_val[0])
                    seen["grpc"].append(version)
                except Exception as exc:  # noqa: BLE001
                    errors.append(repr(exc))

    threads = [threading.Thread(target=rest_traffic), threading.Thread(target=grpc_traffic)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(seen["rest"]) > 20 and len(seen["grpc"]) > 20, what="traffic on version 1")
        copy_version(toy_models["v2"], base, 2)
        wait_for(
            lambda: seen["rest"][-20:] == [2] * 20 and seen["grpc"][-20:] == [2] * 20,
            what="traffic answered by version 2",
        )
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert errors == []
    for protocol, versions in seen.items():
        switch = versions.index(2)
        assert set(versions[:switch]) == {1} and set(versions[switch:]) == {2}, protocol  # one clean switch
    _, doc = call_json(rest, "GET", f"/v1/models/{MODEL}")
    assert [(s["version"], s["state"]) for s in doc["model_version_status"]] == [("2", "AVAILABLE"), ("1", "END")]

    # A broken version 3 and a hidden temp dir: version 3 is reported and skipped, version 2 keeps serving.
    shutil.copytree(toy_models["v1"], base / ".4.tmp")
    write_broken_version(base, 3)

    def version_3_failed():
        try:
            return rest.model_status(MODEL, version=3)["model_version_status"][0]["state"] == "END"
        except ModelServerError:
            return False

    wait_for(version_3_failed, what="version 3 reported as failed")
    [v3] = rest.model_status(MODEL, version=3)["model_version_status"]
    assert v3["status"]["error_code"] == "UNKNOWN"
    assert "Cannot parse the SavedModel proto" in v3["status"]["error_message"]
    assert _version_of(rest.predict_texts(MODEL, [TEXT], input_name="text")[0]["probability"]) == 2
    status, doc = call_json(rest, "GET", f"/v1/models/{MODEL}/versions/4")
    assert status == 404  # .4.tmp is not a version
    metrics = rest.metrics_text()
    assert metric_samples(metrics, "model_server_model_load_failures_total")[(("model", MODEL),)] == 1
    assert metric_samples(metrics, "model_server_loaded_versions")[(("model", MODEL),)] == 1
    assert f"model {MODEL}: version 3 failed to load and is skipped" in server.log_text()
    rest.close()


CONFIG = """
model_config_list {{
  config {{
    name: "{model}"
    base_path: "{base}"
    model_platform: "tensorflow"
    model_version_policy {{ specific {{ versions: 1 versions: 2 }} }}
    version_labels {{ key: "stable" value: 1 }}
    version_labels {{ key: "canary" value: 2 }}
  }}
  config {{ name: "other" base_path: "{other}" }}
}}
"""


def test_pinned_versions_labels_several_models_and_reload(spawn, toy_models, tmp_path: Path) -> None:
    base, other = tmp_path / MODEL, tmp_path / "other"
    for version, source in ((1, "v1"), (2, "v2"), (3, "v1")):
        copy_version(toy_models[source], base, version)
    copy_version(toy_models["v2"], other, 7)
    config = tmp_path / "models.config"
    config.write_text(CONFIG.format(model=MODEL, base=base, other=other))
    server = spawn(model_config_file=str(config), extra_args=["--file_system_poll_wait_seconds=0.1"])
    server.wait_for_model(MODEL, version=2, timeout=180)
    server.wait_for_model(MODEL, version=1, timeout=180)
    server.wait_for_model("other", timeout=180)
    rest = server.rest_client()

    def probability(**where) -> float:
        return rest.predict_texts(MODEL, [TEXT], input_name="text", **where)[0]["probability"]

    assert _version_of(probability()) == 2  # latest of the pinned versions; 3 is on disk but not in the policy
    assert _version_of(probability(version=1)) == 1
    assert _version_of(probability(label="stable")) == 1
    assert _version_of(probability(label="canary")) == 2
    assert call_json(rest, "POST", f"/v1/models/{MODEL}/versions/3:predict", {"instances": [TEXT]}) == (
        404,
        {"error": f"Servable not found for request: Specific({MODEL}, 3)"},
    )
    assert call_json(rest, "GET", f"/v1/models/{MODEL}/labels/stable")[1]["model_version_status"][0]["version"] == "1"
    assert rest.predict_texts("other", [TEXT], input_name="text")[0]["probability"] == pytest.approx(P2, abs=1e-6)
    assert call_json(rest, "GET", "/readyz")[1]["models"] == {MODEL: ["2", "1"], "other": ["7"]}

    with server.grpc_client() as client:
        response = client.predict(MODEL, {"text": [TEXT.encode()]}, label="stable")
        assert response.model_spec.version.value == 1

        # Promote the canary and drop "other" with TF Serving's HandleReloadConfigRequest.
        request = model_management_pb2.ReloadConfigRequest()
        request.config.model_config_list.config.add(name=MODEL, base_path=str(base), model_platform="tensorflow")
        c = request.config.model_config_list.config[0]
        c.model_version_policy.specific.versions.extend([1, 2])
        c.version_labels["stable"] = 2
        stub = model_service_pb2_grpc.ModelServiceStub(client.channel)
        assert stub.HandleReloadConfigRequest(request, timeout=30).status.error_code == 0
        assert client.predict(MODEL, {"text": [TEXT.encode()]}, label="stable").model_spec.version.value == 2
        with pytest.raises(ModelServerError) as info:
            client.predict("other", {"text": [TEXT.encode()]})
        assert info.value.status == "NOT_FOUND"

        bad = model_management_pb2.ReloadConfigRequest()
        bad.config.model_config_list.config.add(name="x")  # no base path
        with pytest.raises(grpc.RpcError) as rpc:
            stub.HandleReloadConfigRequest(bad, timeout=30)
        assert rpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "needs a base_path" in rpc.value.details()
    rest.close()


def test_model_config_file_is_polled(spawn, toy_models, tmp_path: Path) -> None:
    base = tmp_path / MODEL
    copy_version(toy_models["v1"], base, 1)
    config = tmp_path / "models.config"
    config.write_text(f'model_config_list {{ config {{ name: "a" base_path: "{base}" }} }}')
    server = spawn(
        model_config_file=str(config),
        extra_args=["--model_config_file_poll_wait_seconds=0.1", "--file_system_poll_wait_seconds=0.1"],
    )
    server.wait_for_model("a", timeout=180)
    config.write_text(f'model_config_list {{ config {{ name: "b" base_path: "{base}" }} }}')
    server.wait_for_model("b", timeout=180)
    with server.rest_client() as rest:
        assert call_json(rest, "GET", "/v1/models/a")[0] == 404


def test_a_model_with_unregistered_ops_is_reported(spawn, toy_models, tmp_path: Path) -> None:
    """Without --custom_op_modules=tensorflow_text (the default) a model using TF Text ops cannot load: the status
    API says why instead of the server failing."""
    base = tmp_path / MODEL
    copy_version(toy_models["v2"], base, 1)
    server = spawn(
        model_name=MODEL,
        model_base_path=str(base),
        extra_args=["--custom_op_modules=", "--file_system_poll_wait_seconds=0.1"],
    )
    with server.rest_client() as rest:

        def ended():
            try:
                return rest.model_status(MODEL)["model_version_status"][0]["state"] == "END"
            except ModelServerError:
                return False

        wait_for(ended, what="version 1 reported as failed")
        [status] = rest.model_status(MODEL)["model_version_status"]
        assert "Op type not registered 'CaseFoldUTF8'" in status["status"]["error_message"]
        assert call_json(rest, "GET", "/readyz")[0] == 503
