"""Classify, Regress and MultiInference as TF Serving answers them: stock tensorflow-serving-api stubs and plain HTTP
against a real server holding TF Serving's half_plus_two (a TF1 SavedModel) and a native TF2 example model."""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from tensorflow.core.example import example_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from model_server.client import RestClient
from model_server.process import ServerProcess
from tests.doubles import tf_serving_models as tsm
from tests.model_server.ms_helpers import call_json

HP2 = "half_plus_two"
TF2 = "tf2_examples"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, spawn_module) -> ServerProcess:
    root = tmp_path_factory.mktemp("classify_regress")
    tsm.build_half_plus_two(str(root / HP2 / "1"))
    tsm.build_tf2_example_model(str(root / TF2 / "1"))
    config = root / "models.config"
    config.write_text(
        "model_config_list {\n"
        + "".join(
            f'  config {{ name: "{n}" base_path: "{root / n}" model_platform: "tensorflow" }}\n' for n in (HP2, TF2)
        )
        + "}\n"
    )
    batching = root / "batching.txt"
    batching.write_text("max_batch_size { value: 8 }\nbatch_timeout_micros { value: 1000 }\n")
    srv = spawn_module(
        model_config_file=str(config), extra_args=["--enable_batching", f"--batching_parameters_file={batching}"]
    )
    srv.wait_for_model(HP2, timeout=180)
    srv.wait_for_model(TF2, timeout=180)
    return srv


@pytest.fixture(scope="module")
def spawn_module() -> Iterator:
    from model_server.process import start_server

    started: list[ServerProcess] = []

    def _spawn(**kwargs: object) -> ServerProcess:
        srv = start_server(**kwargs)  # type: ignore[arg-type]
        started.append(srv)
        return srv

    yield _spawn
    for srv in started:
        assert srv.stop() == 0


@pytest.fixture(scope="module")
def rest(server: ServerProcess) -> Iterator[RestClient]:
    with server.rest_client() as client:
        yield client


@pytest.fixture(scope="module")
def stub(server: ServerProcess) -> Iterator[prediction_service_pb2_grpc.PredictionServiceStub]:
    with grpc.insecure_channel(server.grpc_target) as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


def _post(rest: RestClient, path: str, doc: object) -> tuple[int, dict]:
    return call_json(rest, "POST", path, json.dumps(doc) if not isinstance(doc, bytes | str) else doc)


# --- REST --------------------------------------------------------------------------------------------------------


def test_rest_classify_answers_as_tf_serving_documents(rest: RestClient) -> None:
    doc = {"signature_name": tsm.CLASSIFY_X_TO_Y, "examples": [{"x": 1.0}, {"x": 3.0}]}
    status, answer = _post(rest, f"/v1/models/{HP2}:classify", doc)
    assert status == 200, answer
    # only `scores`: labels are the proto default "" (TF Serving's g3doc example)
    assert answer == {"results": [[["", 2.5]], [["", 3.5]]]}


def test_rest_regress_merges_the_context_under_each_example(rest: RestClient) -> None:
    doc = {"signature_name": tsm.REGRESS_X_TO_Y2, "context": {"x": 9.0}, "examples": [{"x": 1.0}, {}]}
    status, answer = _post(rest, f"/v1/models/{HP2}/versions/1:regress", doc)
    assert status == 200, answer
    assert answer == {"results": [tsm.half_plus(1.0, 3.0), tsm.half_plus(9.0, 3.0)]}  # the example's x wins


def test_rest_classify_on_a_native_tf2_signature_has_labels_and_scores(rest: RestClient) -> None:
    status, answer = _post(rest, f"/v1/models/{TF2}:classify", {"signature_name": "classify", "examples": [{"x": 0.5}]})
    assert status == 200, answer
    [[(pos, p), (neg, q)]] = answer["results"]
    assert (pos, neg) == tsm.TF2_LABELS
    assert p == pytest.approx(tsm.sigmoid(0.5), abs=1e-6) and q == pytest.approx(1 - tsm.sigmoid(0.5), abs=1e-6)
    status, answer = _post(rest, f"/v1/models/{TF2}:regress", {"signature_name": "regress", "examples": [{"x": [4.0]}]})
    assert (status, answer) == (200, {"results": [4.0]})


def test_rest_accepts_every_json_feature_form(rest: RestClient) -> None:
    ex = example_pb2.Example()
    ex.features.feature["x"].float_list.value.append(5.0)
    ex.features.feature["note"].bytes_list.value.append(b"\xff\x00")
    # {"b64"} and plain strings are bytes features, booleans and integers int64 ones: ignored by this graph
    doc = {
        "signature_name": tsm.REGRESS_X_TO_Y,
        "context": {"note": {"b64": "/wA="}, "flag": True, "count": [1, 2]},
        "examples": [{"x": [5.0], "tag": "a", "other": [0.5, 1.5]}],
    }
    status, answer = _post(rest, f"/v1/models/{HP2}:regress", doc)
    assert (status, answer) == (200, {"results": [4.5]})


BAD_REST = [
    ("classify", {"signature_name": tsm.CLASSIFY_X_TO_Y}, 400, "key 'examples' is expected and was not found"),
    ("regress", {"examples": {"x": 1.0}}, 400, "Expecting 'examples' value to be an list/array"),
    ("classify", {"examples": []}, 400, "'examples' value is an empty array"),
    ("classify", [1], 400, "Is not object"),
    ("classify", {"signature_name": 3, "examples": [{}]}, 400, "'signature_name' key must be a string value."),
    ("classify", {"examples": [[1.0]]}, 400, "=Example must be JSON object but got JSON Array"),
    ("classify", {"context": "x", "examples": [{}]}, 400, "=Example must be JSON object but got JSON String"),
    ("classify", {"examples": [{"x": None}]}, 400, "=Feature: x has element with unexpected JSON type: Null"),
    ("classify", {"examples": [{"x": [[1.0]]}]}, 400, "=Feature: x has element with unexpected JSON type: Array"),
    ("classify", {"examples": [{"x": {"y": 1}}]}, 400, "=Feature: x has element with unexpected JSON type: Object"),
    (
        "classify",
        {"examples": [{"x": [1.0, "a"]}]},
        400,
        "=Unexpected element type in feature: x expecting type: float",
    ),
    ("classify", {"examples": [{"x": 2**63}]}, 400, "=Feature: x has uint64_t element. Only int64_t is supported."),
    ("classify", {"examples": [{"x": {"b64": "%%%"}}]}, 400, "=Unable to base64 decode"),
    ("classify", {"examples": [{"x": 1.0}]}, 400, "No classification inputs found in SignatureDef: "),
    (
        "classify",
        {"signature_name": tsm.REGRESS_X_TO_Y, "examples": [{"x": 1.0}]},
        400,
        'Expected classification signature outputs to contain at least one of "classes" or "scores". Signature was: ',
    ),
    (
        "regress",
        {"signature_name": tsm.CLASSIFY_X_TO_Y, "examples": [{"x": 1.0}]},
        400,
        "No regression outputs found in SignatureDef: ",
    ),
    ("regress", {"signature_name": "nope", "examples": [{}]}, 400, "=No signature was found with the name: nope"),
    # the graph refuses: an int64 feature where it parses a float one, a required feature missing
    (
        "regress",
        {"signature_name": tsm.REGRESS_X_TO_Y, "examples": [{"x": 1}]},
        400,
        "Key: x, Index: 0.  Data types don't",
    ),
    (
        "regress",
        {"signature_name": tsm.REGRESS_X_TO_Y, "examples": [{"y": 1.0}]},
        400,
        "x (data type: float) is required",
    ),
]


@pytest.mark.parametrize(("verb", "doc", "status", "message"), BAD_REST, ids=[str(i) for i in range(len(BAD_REST))])
def test_rest_bad_requests_get_tf_servings_errors(rest: RestClient, verb: str, doc: object, status: int, message: str):
    got, answer = _post(rest, f"/v1/models/{HP2}:{verb}", doc)
    assert got == status, answer
    if message.startswith("="):
        assert answer["error"] == message[1:]
    else:
        assert message in answer["error"]
    assert "Traceback" not in answer["error"]


def test_rest_unknown_models_and_bad_outputs(rest: RestClient) -> None:
    doc = {"examples": [{"x": 1.0}]}
    assert _post(rest, "/v1/models/nope:classify", doc) == (
        404,
        {"error": "Servable not found for request: Latest(nope)"},
    )
    assert _post(rest, f"/v1/models/{HP2}/versions/7:regress", doc) == (
        404,
        {"error": f"Servable not found for request: Specific({HP2}, 7)"},
    )
    status, answer = _post(rest, f"/v1/models/{TF2}:classify", {"signature_name": "bad_classes", **doc})
    assert (status, answer) == (400, {"error": "Expected classes Tensor of DT_STRING. Got: DT_INT64"})


# --- gRPC --------------------------------------------------------------------------------------------------------


def _examples(target, xs: list[float]) -> None:
    for x in xs:
        target.add().features.feature["x"].float_list.value.append(x)


def _rpc_error(call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=30)
    return info.value


def test_grpc_classify_and_regress(stub) -> None:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = HP2
    request.model_spec.signature_name = tsm.CLASSIFY_X_TO_Y
    _examples(request.input.example_list.examples, [1.0, 3.0])
    response = stub.Classify(request, timeout=30)
    assert (response.model_spec.name, response.model_spec.version.value) == (HP2, 1)
    assert response.model_spec.signature_name == tsm.CLASSIFY_X_TO_Y
    assert [[(c.label, c.score) for c in row.classes] for row in response.result.classifications] == [
        [("", 2.5)],
        [("", 3.5)],
    ]
    regress = regression_pb2.RegressionRequest()
    regress.model_spec.name = TF2
    regress.model_spec.signature_name = "regress"
    regress.input.example_list_with_context.context.features.feature["x"].float_list.value.append(2.0)
    _examples(regress.input.example_list_with_context.examples, [6.0])
    regress.input.example_list_with_context.examples.add()  # takes x from the context
    response = stub.Regress(regress, timeout=30)
    assert [r.value for r in response.result.regressions] == [5.0, 3.0]


def test_grpc_classify_equals_rest(stub, rest: RestClient) -> None:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = TF2
    request.model_spec.signature_name = "classify"
    _examples(request.input.example_list.examples, [-1.0, 0.25])
    rows = [
        [(c.label, c.score) for c in row.classes] for row in stub.Classify(request, timeout=30).result.classifications
    ]
    doc = {"signature_name": "classify", "examples": [{"x": -1.0}, {"x": 0.25}]}
    _, answer = _post(rest, f"/v1/models/{TF2}:classify", doc)
    assert [[label for label, _ in row] for row in answer["results"]] == [[label for label, _ in row] for row in rows]
    # the same float32 either way: REST writes its shortest decimal, gRPC the float itself
    rest_scores = [[np.float32(score) for _, score in row] for row in answer["results"]]
    assert rest_scores == [[np.float32(score) for _, score in row] for row in rows]
    assert rows[1][0][1] == pytest.approx(tsm.sigmoid(0.25), abs=1e-6)


def test_grpc_multi_inference_runs_every_task_on_one_input(stub) -> None:
    request = inference_pb2.MultiInferenceRequest()
    for signature, method in ((tsm.CLASSIFY_X_TO_Y, tsm.CLASSIFY_METHOD), (tsm.REGRESS_X_TO_Y2, tsm.REGRESS_METHOD)):
        task = request.tasks.add()
        task.model_spec.name = HP2
        task.model_spec.signature_name = signature
        task.method_name = method
    _examples(request.input.example_list.examples, [2.0, 4.0])
    response = stub.MultiInference(request, timeout=30)
    first, second = response.results
    assert (first.model_spec.name, first.model_spec.signature_name, first.model_spec.version.value) == (
        HP2,
        tsm.CLASSIFY_X_TO_Y,
        1,
    )
    assert [row.classes[0].score for row in first.classification_result.classifications] == [3.0, 4.0]
    assert second.model_spec.signature_name == tsm.REGRESS_X_TO_Y2
    assert [r.value for r in second.regression_result.regressions] == [4.0, 5.0]


def _multi(*tasks: tuple[str, str, str], xs: tuple[float, ...] = (1.0,)) -> inference_pb2.MultiInferenceRequest:
    request = inference_pb2.MultiInferenceRequest()
    for model, signature, method in tasks:
        task = request.tasks.add()
        task.model_spec.name = model
        task.model_spec.signature_name = signature
        task.method_name = method
    _examples(request.input.example_list.examples, list(xs))
    return request


C, R = tsm.CLASSIFY_METHOD, tsm.REGRESS_METHOD
BAD_MULTI = [
    (_multi((HP2, tsm.CLASSIFY_X_TO_Y, C), (TF2, "regress", R)), "INVALID_ARGUMENT", "All ModelSpecs in a"),
    (_multi((HP2, tsm.CLASSIFY_X_TO_Y, C), (HP2, tsm.CLASSIFY_X_TO_Y, C)), "INVALID_ARGUMENT", "Duplicate evaluation"),
    (_multi((HP2, "nope", C)), "INVALID_ARGUMENT", "Requested signature not found in model graph: nope"),
    (_multi((HP2, tsm.CLASSIFY_X_TO_Y, tsm.PREDICT_METHOD)), "UNIMPLEMENTED", "Unsupported signature method_name"),
    (_multi((HP2, tsm.REGRESS_X_TO_Y, C)), "INVALID_ARGUMENT", "Expected classification signature outputs"),
    (_multi((HP2, tsm.REGRESS_X_TO_Y, R), xs=()), "INVALID_ARGUMENT", "Input is empty."),
    (_multi(("nope", tsm.REGRESS_X_TO_Y, R)), "NOT_FOUND", "Servable not found for request: Latest(nope)"),
    (_multi(), "INVALID_ARGUMENT", ""),
]


@pytest.mark.parametrize(("request_", "code", "message"), BAD_MULTI, ids=[str(i) for i in range(len(BAD_MULTI))])
def test_grpc_multi_inference_refuses_as_tf_serving(stub, request_, code: str, message: str) -> None:
    err = _rpc_error(stub.MultiInference, request_)
    assert err.code() == grpc.StatusCode[code], err.details()
    assert message in err.details()


def test_grpc_classify_and_regress_errors(stub) -> None:
    request = classification_pb2.ClassificationRequest()
    err = _rpc_error(stub.Classify, request)
    assert (err.code(), err.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
    request.model_spec.name = HP2
    request.model_spec.signature_name = tsm.CLASSIFY_X_TO_Y
    err = _rpc_error(stub.Classify, request)
    assert (err.code(), err.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "Input is empty.")
    request.model_spec.signature_name = ""  # serving_default: a predict signature over `x`
    _examples(request.input.example_list.examples, [1.0])
    err = _rpc_error(stub.Classify, request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("No classification inputs found in SignatureDef: ")
    request.model_spec.name = "nope"
    assert _rpc_error(stub.Classify, request).code() == grpc.StatusCode.NOT_FOUND
    regress = regression_pb2.RegressionRequest()
    regress.model_spec.name = HP2
    regress.model_spec.signature_name = "nope"
    _examples(regress.input.example_list.examples, [1.0])
    err = _rpc_error(stub.Regress, regress)
    assert (err.code(), err.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "No signature was found with the name: nope",
    )


def test_the_server_still_predicts_after_the_bad_requests(rest: RestClient) -> None:
    status, answer = _post(rest, f"/v1/models/{HP2}:predict", {"instances": [[1.0], [5.0]]})
    assert (status, answer) == (200, {"predictions": [[2.5], [4.5]]})
