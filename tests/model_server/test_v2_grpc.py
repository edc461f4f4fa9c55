"""The Open Inference Protocol (KServe V2) over gRPC, against the real server process: ``tritonclient.grpc`` (raw
contents, as Triton clients send them) and our own ``v2_proto`` messages (typed contents, malformed requests)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest

from model_server import v2_proto
from model_server.process import ServerProcess
from tests.model_server.ms_helpers import MODEL, V1_BIAS, expected_probability, serialized_example

grpcclient = pytest.importorskip("tritonclient.grpc")
from tritonclient.utils import InferenceServerException  # noqa: E402 - after the importorskip

TEXTS = ["A great film, I loved it.", "Dull and boring.", "It was fine."]
Msg = v2_proto.message_class


@pytest.fixture(scope="module")
def triton(shared_server: ServerProcess) -> Iterator[Any]:
    client = grpcclient.InferenceServerClient(shared_server.grpc_target)
    yield client
    client.close()


@pytest.fixture(scope="module")
def channel(shared_server: ServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(shared_server.grpc_target) as ch:
        yield ch


def _rpc(channel: grpc.Channel, method: str, request: Any) -> Any:
    response_cls = v2_proto.MESSAGES[next(r.response for r in v2_proto.RPCS if r.name == method)]
    call = channel.unary_unary(
        f"/{v2_proto.SERVICE}/{method}",
        request_serializer=lambda m: m if isinstance(m, bytes) else m.SerializeToString(),
        response_deserializer=response_cls.FromString,
    )
    return call(request, timeout=30)


def _code(channel: grpc.Channel, method: str, request: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        _rpc(channel, method, request)
    return info.value.code(), info.value.details()


def _text_input(texts: list[bytes]) -> Any:
    text = grpcclient.InferInput("text", [len(texts)], "BYTES")
    text.set_data_from_numpy(np.array(texts, dtype=object))
    return text


def test_our_messages_are_wire_compatible_with_tritons() -> None:
    """Every field of every message we built from grpc_predict_v2.proto has Triton's number, type and label."""
    from tritonclient.grpc import service_pb2

    def same(mine: Any, theirs: Any) -> None:
        assert mine.GetOptions().map_entry == theirs.GetOptions().map_entry
        for field in mine.fields:
            other = theirs.fields_by_name[field.name]
            assert (field.number, field.type, field.label) == (other.number, other.type, other.label), field.full_name
            if field.message_type is not None:
                same(field.message_type, other.message_type)

    assert len(v2_proto.MESSAGES) == 14
    for cls in v2_proto.MESSAGES.values():
        same(cls.DESCRIPTOR, service_pb2.DESCRIPTOR.message_types_by_name[cls.DESCRIPTOR.name])
    theirs = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    for rpc in v2_proto.RPCS:
        assert theirs.methods_by_name[rpc.name].input_type.full_name == rpc.request


def test_health_and_metadata_with_tritonclient(triton: Any) -> None:
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready(MODEL) and triton.is_model_ready(MODEL, "1")
    assert not triton.is_model_ready(MODEL, "7")
    assert triton.get_server_metadata().name == "model_server"
    meta = triton.get_model_metadata(MODEL)
    assert (meta.name, list(meta.versions), meta.platform) == (MODEL, ["1"], "tensorflow_savedmodel")
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [("text", "BYTES", [-1])]
    assert [(t.name, t.datatype) for t in meta.outputs] == [("label", "BYTES"), ("probability", "FP32")]
    with pytest.raises(InferenceServerException) as info:
        triton.is_model_ready("nope")
    assert info.value.status() == "StatusCode.NOT_FOUND"


def test_tritonclient_infer_with_raw_contents(triton: Any) -> None:
    result = triton.infer(MODEL, [_text_input([t.encode() for t in TEXTS])], request_id="g-1")
    response = result.get_response()
    assert (response.model_name, response.model_version, response.id) == (MODEL, "1", "g-1")
    assert len(response.raw_output_contents) == 2
    want = [expected_probability(t, V1_BIAS) for t in TEXTS]
    np.testing.assert_allclose(result.as_numpy("probability"), want, atol=1e-6)
    assert list(result.as_numpy("label")) == [b"positive" if p >= 0.5 else b"negative" for p in want]


def test_tritonclient_outputs_filter_version_and_signature_parameter(triton: Any) -> None:
    examples = grpcclient.InferInput("examples", [2], "BYTES")
    examples.set_data_from_numpy(np.array([serialized_example(t) for t in TEXTS[:2]], dtype=object))
    result = triton.infer(
        MODEL,
        [examples],
        model_version="1",
        outputs=[grpcclient.InferRequestedOutput("probability")],
        parameters={"signature_name": "from_examples"},
    )
    assert [o.name for o in result.get_response().outputs] == ["probability"]
    np.testing.assert_allclose(
        result.as_numpy("probability"), [expected_probability(t, V1_BIAS) for t in TEXTS[:2]], atol=1e-6
    )


def test_typed_contents_get_typed_contents_back(channel: grpc.Channel) -> None:
    request = Msg("ModelInferRequest")(model_name=MODEL, id="typed")
    tensor = request.inputs.add(name="text", datatype="BYTES", shape=[2])
    tensor.contents.bytes_contents.extend([b"great", b"awful"])
    response = _rpc(channel, "ModelInfer", request)
    assert response.id == "typed" and not response.raw_output_contents
    outputs = {o.name: o for o in response.outputs}
    np.testing.assert_allclose(
        outputs["probability"].contents.fp32_contents,
        [expected_probability("great", V1_BIAS), expected_probability("awful", V1_BIAS)],
        atol=1e-6,
    )
    assert list(outputs["label"].contents.bytes_contents) == [b"positive", b"negative"]


def _request(datatype: str = "BYTES", shape: tuple[int, ...] = (1,), raw: bytes | None = None, **kw: Any) -> Any:
    request = Msg("ModelInferRequest")(model_name=kw.pop("model", MODEL), model_version=kw.pop("version", ""))
    tensor = request.inputs.add(name=kw.pop("name", "text"), datatype=datatype, shape=list(shape))
    if raw is not None:
        request.raw_input_contents.append(raw)
    else:
        tensor.contents.bytes_contents.extend(kw.pop("values", [b"good"]))
    for key, value in kw.pop("parameters", {}).items():
        request.parameters[key].string_param = value
    return request


def _raw(*values: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(v)) + v for v in values)


@pytest.mark.parametrize(
    ("request_", "code", "words"),
    [
        (_request(datatype="FP32", raw=b"\0\0\0\0"), grpc.StatusCode.INVALID_ARGUMENT, "datatype FP32"),
        (_request(datatype="NOPE"), grpc.StatusCode.INVALID_ARGUMENT, "unsupported datatype"),
        (_request(shape=(2,)), grpc.StatusCode.INVALID_ARGUMENT, "needs 2 elements"),
        (_request(shape=(2,), raw=_raw(b"good")), grpc.StatusCode.INVALID_ARGUMENT, "end before element 1"),
        (_request(raw=struct.pack("<I", 50) + b"good"), grpc.StatusCode.INVALID_ARGUMENT, "past the end"),
        (_request(raw=_raw(b"good") + b"x"), grpc.StatusCode.INVALID_ARGUMENT, "beyond"),
        (_request(shape=(2**40,), raw=_raw(b"good")), grpc.StatusCode.INVALID_ARGUMENT, "cannot hold"),
        (_request(values=[b"\xff\xfe"]), grpc.StatusCode.INVALID_ARGUMENT, "UTF-8"),
        (_request(name="words"), grpc.StatusCode.INVALID_ARGUMENT, "words"),
        (_request(model="nope"), grpc.StatusCode.NOT_FOUND, "nope"),
        (_request(version="9"), grpc.StatusCode.NOT_FOUND, "9"),
        (_request(model=""), grpc.StatusCode.INVALID_ARGUMENT, "model name"),
        (_request(parameters={"signature_name": "nope"}), grpc.StatusCode.FAILED_PRECONDITION, "nope"),
    ],
)
def test_bad_requests_get_a_clear_status(channel: grpc.Channel, request_: Any, code: Any, words: str) -> None:
    got, details = _code(channel, "ModelInfer", request_)
    assert (got, words in details) == (code, True), details


def test_mismatched_raw_contents_and_unparsable_messages(channel: grpc.Channel) -> None:
    both = _request(raw=_raw(b"good"))
    both.inputs[0].contents.bytes_contents.append(b"good")
    assert _code(channel, "ModelInfer", both)[0] == grpc.StatusCode.INVALID_ARGUMENT
    extra = _request(raw=_raw(b"good"))
    extra.raw_input_contents.append(b"")
    assert "2 entries" in _code(channel, "ModelInfer", extra)[1]
    assert _code(channel, "ModelInfer", b"\xff\xff\xff")[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert _code(channel, "ModelMetadata", Msg("ModelMetadataRequest")(name="nope"))[0] == grpc.StatusCode.NOT_FOUND
    assert _rpc(channel, "ServerLive", b"").live  # the server still answers


def test_grpc_and_rest_v2_and_tf_serving_apis_agree(shared_server: ServerProcess, triton: Any) -> None:
    texts = [t.encode() for t in TEXTS]
    v2 = triton.infer(MODEL, [_text_input(texts)]).as_numpy("probability")
    with shared_server.grpc_client() as client:
        v1 = [row["probability"] for row in client.predict_texts(MODEL, TEXTS, input_name="text")]
    np.testing.assert_allclose(v2, v1, atol=1e-6, rtol=0)
