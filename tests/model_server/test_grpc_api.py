"""TF Serving's gRPC API with the stock tensorflow-serving-api stubs, against the real server process."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tests.model_server.ms_helpers import MODEL, V1_BIAS, expected_probability, metric_samples, serialized_example


@pytest.fixture(scope="module")
def channel(shared_server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(shared_server.grpc_target) as ch:
        yield ch


@pytest.fixture(scope="module")
def predictions(channel) -> prediction_service_pb2_grpc.PredictionServiceStub:
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="module")
def models(channel) -> model_service_pb2_grpc.ModelServiceStub:
    return model_service_pb2_grpc.ModelServiceStub(channel)


def _request(
    inputs: dict, signature: str = "", model: str = MODEL, version: int | None = None, label: str = ""
) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    if signature:
        request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    if label:
        request.model_spec.version_label = label
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(
            value if isinstance(value, tensor_pb2.TensorProto) else tf.make_tensor_proto(value)
        )
    return request


def _error(call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=30)
    return info.value


def test_predict(predictions) -> None:
    texts = ["A great and wonderful film", "Dull."]
    response = predictions.Predict(_request({"text": texts}), timeout=30)
    assert response.model_spec.name == MODEL
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    # Values in the *_val fields, as TF Serving returns them (clients read float_val directly).
    assert list(response.outputs["probability"].float_val) == pytest.approx(
        [expected_probability(t, V1_BIAS) for t in texts], abs=1e-6
    )
    assert list(response.outputs["label"].string_val) == [b"positive", b"negative"]
    assert tf.make_ndarray(response.outputs["probability"]).shape == (2,)


def test_predict_accepts_tensor_content_and_a_pinned_version(predictions) -> None:
    proto = tf.make_tensor_proto(np.array([b"brilliant"], dtype=object))
    response = predictions.Predict(_request({"text": proto}, version=1), timeout=30)
    assert response.outputs["label"].string_val == [b"positive"]


def test_predict_from_examples_with_output_filter(predictions) -> None:
    request = _request(
        {"examples": [serialized_example("awful, the worst"), serialized_example("superb")]}, signature="from_examples"
    )
    request.output_filter.append("label")
    response = predictions.Predict(request, timeout=30)
    assert list(response.outputs) == ["label"]
    assert list(response.outputs["label"].string_val) == [b"negative", b"positive"]
    assert response.model_spec.signature_name == "from_examples"


def test_get_model_metadata(predictions) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = MODEL
    response = predictions.GetModelMetadata(request, timeout=30)
    assert response.model_spec.name == MODEL and response.model_spec.version.value == 1
    sigs = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(sigs)
    serving = sigs.signature_def["serving_default"]
    assert serving.inputs["text"].dtype == types_pb2.DT_STRING
    assert set(serving.outputs) == {"probability", "label"}
    assert set(sigs.signature_def["from_examples"].inputs) == {"examples"}


def test_get_model_status(models) -> None:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL
    response = models.GetModelStatus(request, timeout=30)
    [status] = response.model_version_status
    assert status.version == 1
    assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert status.status.error_code == 0 and status.status.error_message == ""


def _bad_content() -> tensor_pb2.TensorProto:
    proto = tf.make_tensor_proto(np.array([1.0, 2.0], dtype=np.float32))
    proto.tensor_content = proto.tensor_content[:5]
    return proto


GRPC_ERRORS = [
    (
        dict(inputs={"text": ["a"]}, model="nope"),
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Latest(nope)",
    ),
    (
        dict(inputs={"text": ["a"]}, version=7),
        grpc.StatusCode.NOT_FOUND,
        f"Servable not found for request: Specific({MODEL}, 7)",
    ),
    (
        dict(inputs={"text": ["a"]}, label="canary"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Unrecognized servable version label: canary",
    ),
    (dict(inputs={"text": ["a"]}, model=""), grpc.StatusCode.INVALID_ARGUMENT, "Missing model name in request."),
    (
        dict(inputs={"text": ["a"]}, signature="nope"),
        grpc.StatusCode.FAILED_PRECONDITION,
        'Serving signature key "nope" not found.',
    ),
    (
        dict(inputs={"txt": ["a"]}),
        grpc.StatusCode.INVALID_ARGUMENT,
        f"Request inputs do not match required inputs for model `{MODEL}`. Send extra: {{txt}}. "
        f"Missing but required: {{text}}.",
    ),
    (
        dict(inputs={"text": ["a"], "extra": ["b"]}),
        grpc.StatusCode.INVALID_ARGUMENT,
        "~Send extra: {extra}. Missing but required: {}.",
    ),
    (dict(inputs={}), grpc.StatusCode.INVALID_ARGUMENT, "~Send extra: {}. Missing but required: {text}."),
    (
        dict(inputs={"text": [1.5]}),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Expects arg[0] to be string but float is provided",  # TensorFlow's words, as in TF Serving
    ),
    (
        dict(inputs={"text": np.array([], dtype=object)}),
        grpc.StatusCode.INVALID_ARGUMENT,
        "The request has an empty batch: send at least one instance",
    ),
    (
        dict(inputs={"text": ["ok", "  "]}),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Input 'text' instance 1 is empty or whitespace-only: send the text to classify",
    ),
    (
        dict(inputs={"text": [b"\xc3\x28"]}),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Input 'text' instance 0 is not valid UTF-8",
    ),
    (
        dict(inputs={"text": [["a"]]}),
        grpc.StatusCode.INVALID_ARGUMENT,
        "input must be a vector, got shape: [1,1]",  # the graph's own error
    ),
    (dict(inputs={"text": ["x"] * 65}), grpc.StatusCode.INVALID_ARGUMENT, "~more than the limit of 64"),
    (dict(inputs={"text": _bad_content()}), grpc.StatusCode.INVALID_ARGUMENT, "~tensor_content holds 5 bytes"),
    (
        dict(inputs={"examples": [b"\x0a\x05junk"]}, signature="from_examples"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Could not parse example input",
    ),
]


@pytest.mark.parametrize(("kwargs", "code", "message"), GRPC_ERRORS, ids=[str(i) for i in range(len(GRPC_ERRORS))])
def test_predict_errors(predictions, kwargs, code, message) -> None:
    err = _error(predictions.Predict, _request(**kwargs))
    assert err.code() == code
    if message.startswith("~"):
        assert message[1:] in err.details()
    else:
        assert err.details() == message
    assert "Traceback" not in err.details()


def test_a_message_over_the_size_limit_is_refused(predictions) -> None:
    err = _error(predictions.Predict, _request({"text": ["great " * 20_000]}))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_status_and_metadata_errors(predictions, models) -> None:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "nope"
    err = _error(models.GetModelStatus, request)
    assert (err.code(), err.details()) == (grpc.StatusCode.NOT_FOUND, "Could not find any versions of model nope")
    request.model_spec.name = MODEL
    request.model_spec.version.value = 3
    err = _error(models.GetModelStatus, request)
    assert (err.code(), err.details()) == (grpc.StatusCode.NOT_FOUND, f"Could not find version 3 of model {MODEL}")
    meta = get_model_metadata_pb2.GetModelMetadataRequest()
    meta.model_spec.name = MODEL
    err = _error(predictions.GetModelMetadata, meta)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "at least one metadata_field" in err.details()
    meta.metadata_field.append("graph")
    err = _error(predictions.GetModelMetadata, meta)
    assert (err.code(), err.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "Metadata field graph is not supported")


def test_classify_regress_and_multi_inference_refuse_a_predict_signature(predictions) -> None:
    """`serving_default` is a predict signature: TF Serving's signature checks answer, not UNIMPLEMENTED."""
    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.name = MODEL
    regress = regression_pb2.RegressionRequest()
    regress.model_spec.name = MODEL
    multi = inference_pb2.MultiInferenceRequest()
    multi.tasks.add().model_spec.name = MODEL
    for call, request, code, message in (
        (predictions.Classify, classify, grpc.StatusCode.INVALID_ARGUMENT, "No classification inputs found"),
        (predictions.Regress, regress, grpc.StatusCode.INVALID_ARGUMENT, "Expected one output Tensor."),
        (predictions.MultiInference, multi, grpc.StatusCode.UNIMPLEMENTED, "Unsupported signature method_name: "),
    ):
        err = _error(call, request)
        assert err.code() == code and err.details().startswith(message), err.details()
    classify.model_spec.name = "nope"
    assert _error(predictions.Classify, classify).code() == grpc.StatusCode.NOT_FOUND


def test_grpc_calls_are_counted(predictions, shared_server) -> None:
    predictions.Predict(_request({"text": ["good"]}), timeout=30)
    with shared_server.rest_client() as rest:
        text = rest.metrics_text()
    counts = metric_samples(text, "model_server_requests_total")
    ok = (("code", "OK"), ("method", "predict"), ("model", MODEL), ("protocol", "grpc"))
    assert counts[ok] >= 1
    errors = metric_samples(text, "model_server_request_errors_total")
    assert errors[(("code", "NOT_FOUND"), ("method", "predict"), ("model", "_other"), ("protocol", "grpc"))] >= 1


ACCEPTED_IDS = ["trace-42", "A.b_c-9", "x" * 64]
REFUSED_IDS = ["x" * 65, "bad id", "semi;colon", "slash/x", 'quote"d', ""]


@pytest.mark.parametrize("request_id", ACCEPTED_IDS + REFUSED_IDS)
def test_rest_and_grpc_accept_the_same_request_ids(shared_server, models, request_id: str) -> None:
    """One rule for both transports: a client's id is echoed only when it is 1-64 of [A-Za-z0-9._-]."""
    with shared_server.rest_client() as rest:
        _, headers, _ = rest.request("GET", f"/v1/models/{MODEL}", headers={"X-Request-Id": request_id})
    rest_id = headers["x-request-id"]
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL
    _, call = models.GetModelStatus.with_call(request, timeout=30, metadata=(("x-request-id", request_id),))
    grpc_id = dict(call.trailing_metadata())["x-request-id"]
    if request_id in ACCEPTED_IDS:
        assert rest_id == grpc_id == request_id
    else:
        for echoed in (rest_id, grpc_id):
            assert echoed != request_id and len(echoed) == 16 and int(echoed, 16) >= 0


def test_client_predict_texts_names_inputs_and_outputs(shared_server) -> None:
    with shared_server.grpc_client() as client:
        rows = client.predict_texts(MODEL, ["superb", "awful"], input_name="text", output_names=["label"])
    assert rows == [{"label": "positive"}, {"label": "negative"}]
    with shared_server.rest_client() as rest:
        rows = rest.predict_texts(MODEL, ["superb"], input_name="text", output_names=["label"])
        assert rows == [{"label": "positive"}]
        [row] = rest.predict_texts(MODEL, ["superb"], input_name="text")
    assert set(row) == {"probability", "label"}
