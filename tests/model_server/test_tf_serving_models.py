"""TF Serving's own test models on a real server, asked what TF Serving's docs and clients ask, with the stock
``tensorflow-serving-api`` stubs and plain HTTP: the quick start, TF1 models, two versions, TensorFlow's errors,
``--saved_model_tags``, warm-up iterations, load retries, and ports that open only once the initial load settled."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from model_server.process import ServerProcess, start_server
from tests.doubles import tf_serving_models as tfs
from tests.model_server.ms_helpers import b64, call_json, metric_samples, write_broken_version

CONFIG_ENTRY = 'config {{ name: "{name}" base_path: "{base}" model_platform: "tensorflow" }}\n'
AVAILABLE = get_model_status_pb2.ModelVersionStatus.State.AVAILABLE
END = get_model_status_pb2.ModelVersionStatus.State.END


def write_config(path: Path, models: dict[str, Path]) -> Path:
    path.write_text(
        "model_config_list {\n" + "".join(CONFIG_ENTRY.format(name=n, base=b) for n, b in models.items()) + "}\n"
    )
    return path


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Base paths: half_plus_two (versions 123 and 124), half_plus_three, a TF2 module, a broken model."""
    root = tmp_path_factory.mktemp("tf_serving_zoo")
    tfs.build_two_versions(str(root / "half_plus_two"))
    tfs.write_x_warmup_requests(str(root / "half_plus_two" / "124"), [1.0, 2.0])
    tfs.build_half_plus_three(str(root / "half_plus_three" / "1"))
    tfs.build_tf2_half_plus_two(str(root / "tf2" / "1"))
    tfs.build_half_plus_two(str(root / "tagged" / "1"), tags=("serve", "gpu"))
    (root / "broken").mkdir()
    write_broken_version(root / "broken", 1)
    return {p.name: p for p in root.iterdir()}


@pytest.fixture(scope="module")
def server(zoo: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    names = ("half_plus_two", "half_plus_three", "tf2", "broken")
    config = write_config(tmp_path_factory.mktemp("config") / "models.config", {n: zoo[n] for n in names})
    extra = ["--num_request_iterations_for_warmup=3", "--max_num_load_retries=1", "--load_retry_interval_micros=1000"]
    srv = start_server(model_config_file=str(config), extra_args=extra)
    yield srv
    assert srv.stop() == 0


def status_of(target: str, name: str) -> list[tuple[int, int, str]]:
    with grpc.insecure_channel(target) as channel:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = name
        response = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=10)
    return [(s.version, s.state, s.status.error_message) for s in response.model_version_status]


def grpc_predict(target: str, model: str, x: np.ndarray, signature: str = "") -> predict_pb2.PredictResponse:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(x))
    with grpc.insecure_channel(target) as channel:
        return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=10)


def test_the_ports_open_only_after_the_initial_models_loaded_or_failed(server: ServerProcess) -> None:
    # start_server returned as soon as the port file appeared: every model must already have its final state
    assert status_of(server.grpc_target, "half_plus_two") == [(124, AVAILABLE, "")]
    assert [s[:2] for s in status_of(server.grpc_target, "half_plus_three")] == [(1, AVAILABLE)]
    assert [s[:2] for s in status_of(server.grpc_target, "tf2")] == [(1, AVAILABLE)]
    [(version, state, message)] = status_of(server.grpc_target, "broken")
    assert (version, state) == (1, END) and "Cannot parse the SavedModel proto" in message
    log = server.log_text()
    assert log.index("initial models settled") < log.index("serving half_plus_two")
    assert "failed to load (attempt 1 of 2), retrying" in log  # --max_num_load_retries=1


def test_tf_servings_quick_start_over_rest_and_grpc(server: ServerProcess) -> None:
    with server.rest_client() as rest:
        body = {"instances": [1.0, 2.0, 5.0]}
        # the latest version serves (124, built with b = 3); TF Serving's docker.md numbers come from b = 2 below
        assert call_json(rest, "POST", "/v1/models/half_plus_two:predict", body) == (
            200,
            {"predictions": [3.5, 4.0, 5.5]},
        )
        assert call_json(rest, "POST", "/v1/models/tf2:predict", body) == (200, {"predictions": [2.5, 3.0, 4.5]})
    response = grpc_predict(server.grpc_target, "tf2", np.array([1.0, 2.0, 5.0], np.float32))
    assert list(response.outputs["y"].float_val) == [2.5, 3.0, 4.5]
    assert [d.size for d in response.outputs["y"].tensor_shape.dim] == [3]


def test_the_tf1_parse_example_model_serves(server: ServerProcess) -> None:
    examples = [{"b64": b64(tfs.example(x=1.0))}, {"b64": b64(tfs.example(x=4.0))}]
    body = {"signature_name": tfs.REGRESS_X_TO_Y, "instances": examples}
    with server.rest_client() as rest:
        assert call_json(rest, "POST", "/v1/models/half_plus_three:predict", body) == (
            200,
            {"predictions": [[3.5], [5.0]]},
        )


def test_tensorflows_errors_come_back_as_invalid_argument(server: ServerProcess) -> None:
    with pytest.raises(grpc.RpcError) as info:
        grpc_predict(server.grpc_target, "half_plus_two", np.array([1.0], np.float64))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "Expects arg[0] to be float but double is provided"
    nested = {"signature_name": tfs.REGRESS_X_TO_Y, "inputs": {"inputs": [[{"b64": b64(tfs.example(x=1.0))}]]}}
    with server.rest_client() as rest:
        assert call_json(rest, "POST", "/v1/models/half_plus_two:predict", nested) == (
            400,
            {"error": "Expected serialized to be a scalar or vector, got shape: [1,1]"},
        )


def test_warmup_records_ran_num_request_iterations_for_warmup_times(server: ServerProcess) -> None:
    with server.rest_client() as rest:
        _, _, body = rest.request("GET", "/metrics")
    samples = metric_samples(body.decode(), "model_server_warmup_requests_total")
    assert samples[(("model", "half_plus_two"),)] == 2 * 3


def test_saved_model_tags_choose_the_meta_graph(
    spawn: Callable[..., ServerProcess], zoo: dict[str, Path], tmp_path: Path
) -> None:
    config = write_config(tmp_path / "models.config", {"tagged": zoo["tagged"], "tf2": zoo["tf2"]})
    srv = spawn(model_config_file=str(config), extra_args=["--saved_model_tags=gpu, serve"])
    assert [s[:2] for s in status_of(srv.grpc_target, "tagged")] == [(1, AVAILABLE)]
    [(_, state, message)] = status_of(srv.grpc_target, "tf2")
    assert state == END
    assert message.startswith("Could not find meta graph def matching supplied tags: { gpu serve }.")
    with srv.rest_client() as rest:
        status, doc = call_json(rest, "GET", "/v1/models/tagged/metadata")
    assert status == 200
    assert tfs.CLASSIFY_X_TO_Y in doc["metadata"]["signature_def"]["signature_def"]
