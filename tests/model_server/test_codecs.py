"""Wire codecs without a server: TensorProto <-> NumPy, and REST JSON for signatures the toy model lacks
(several inputs, numeric and boolean dtypes, ``_bytes`` outputs)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from model_server import rest_codec, tensors
from model_server.errors import InvalidArgument
from model_server.model import SignatureInfo
from model_server.tensors import BY_NAME, TensorInfo


def _sig(inputs: dict[str, tuple[str, tuple]], outputs: dict[str, tuple[str, tuple]] | None = None) -> SignatureInfo:
    def infos(spec):
        return {k: TensorInfo(k, BY_NAME[d], s) for k, (d, s) in spec.items()}

    outputs = outputs or {"y": ("float32", (None,))}
    return SignatureInfo("s", infos(inputs), infos(outputs), "tensorflow/serving/predict")


MULTI = _sig({"ids": ("int64", (None, 3)), "weight": ("float32", (None,)), "flag": ("bool", (None,))})


def test_proto_to_ndarray_reads_val_fields_tensor_content_and_broadcasts() -> None:
    for value in (
        np.array([[1.5, 2.5]], dtype=np.float32),
        np.array([1, 2, 3], dtype=np.int64),
        np.array([True, False]),
        np.array([b"a", b"\xff"], dtype=object),
    ):
        proto = tf.make_tensor_proto(value)
        np.testing.assert_array_equal(tensors.proto_to_ndarray(proto, "x"), value)
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[7.0])
    proto.tensor_shape.dim.add(size=3)
    np.testing.assert_array_equal(tensors.proto_to_ndarray(proto, "x"), [7.0, 7.0, 7.0])  # one value fills it
    half = tf.make_tensor_proto(np.array([0.5, 1.5], dtype=np.float16))
    np.testing.assert_array_equal(tensors.proto_to_ndarray(half, "x"), [0.5, 1.5])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.float_val.extend([1.0, 2.0]), "do not fill shape"),
        (lambda p: setattr(p, "dtype", types_pb2.DT_RESOURCE), "unsupported dtype resource"),
        (lambda p: setattr(p.tensor_shape, "unknown_rank", True), "must be known"),
        (lambda p: p.tensor_shape.dim.add(size=-4), "negative dimension"),
    ],
)
def test_malformed_protos_are_invalid_arguments(mutate, message: str) -> None:
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT)
    proto.tensor_shape.dim.add(size=3)
    mutate(proto)
    with pytest.raises(InvalidArgument, match=message):
        tensors.proto_to_ndarray(proto, "x")


def test_ndarray_to_proto_uses_val_fields_like_tf_serving() -> None:
    proto = tensors.ndarray_to_proto(np.array([[0.25, 0.5]], dtype=np.float32), BY_NAME["float32"])
    assert list(proto.float_val) == [0.25, 0.5] and not proto.tensor_content
    assert [d.size for d in proto.tensor_shape.dim] == [1, 2]
    proto = tensors.ndarray_to_proto(np.array([b"positive"], dtype=object), tensors.STRING)
    assert list(proto.string_val) == [b"positive"]
    np.testing.assert_array_equal(tf.make_ndarray(proto), np.array([b"positive"], dtype=object))


def test_row_format_with_several_inputs() -> None:
    inputs = rest_codec.decode_instances(
        [{"ids": [1, 2, 3], "weight": 0.5, "flag": True}, {"ids": [4, 5, 6], "weight": 2, "flag": False}], MULTI
    )
    assert inputs["ids"].dtype == np.int64 and inputs["ids"].tolist() == [[1, 2, 3], [4, 5, 6]]
    assert inputs["weight"].dtype == np.float32 and inputs["weight"].tolist() == [0.5, 2.0]
    assert inputs["flag"].tolist() == [True, False]


def test_columnar_format_with_several_inputs() -> None:
    inputs = rest_codec.decode_inputs({"ids": [[1, 2, 3]], "weight": [1.0], "flag": [True]}, MULTI)
    assert {k: v.shape for k, v in inputs.items()} == {"ids": (1, 3), "weight": (1,), "flag": (1,)}


@pytest.mark.parametrize(
    ("instances", "message"),
    [
        (
            [{"ids": [1.5, 2, 3], "weight": 1.0, "flag": True}],
            "JSON Value: 1.5 Type: Number is not of expected type: int64",
        ),
        (
            [{"ids": [1, 2, 3], "weight": "1", "flag": True}],
            'JSON Value: "1" Type: String is not of expected type: float',
        ),
        (
            [{"ids": [1, 2, 3], "weight": True, "flag": True}],
            "JSON Value: true Type: True is not of expected type: float",
        ),
        ([{"ids": [1, 2, 3], "weight": 1.0, "flag": 1}], "JSON Value: 1 Type: Number is not of expected type: bool"),
        ([{"ids": [2**70, 2, 3], "weight": 1.0, "flag": True}], "does not fit dtype int64"),
        ([{"ids": [1, 2, 3], "weight": 1.0, "flag": True}, "bare"], "Expecting object but got String at item 1"),
    ],
)
def test_type_errors_name_the_value_and_the_dtype(instances, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        rest_codec.decode_instances(instances, MULTI)
    assert message in info.value.message


def test_several_inputs_need_an_object_in_columnar_format() -> None:
    with pytest.raises(InvalidArgument, match="'inputs' must be an object naming every input"):
        rest_codec.decode_inputs([1, 2], MULTI)


def test_encoding_single_output_bytes_outputs_and_float_precision() -> None:
    sig = _sig({"x": ("string", (None,))}, {"image_bytes": ("string", (None,))})
    outputs = {"image_bytes": np.array([b"\x00\xff"], dtype=object)}
    assert rest_codec.encode_predictions(outputs, sig, True) == {"predictions": [{"b64": "AP8="}]}
    assert rest_codec.encode_predictions(outputs, sig, False) == {"outputs": [{"b64": "AP8="}]}
    sig = _sig({"x": ("string", (None,))}, {"p": ("float32", (None, 2))})
    doc = rest_codec.encode_predictions({"p": np.array([[0.1, 0.7]], dtype=np.float32)}, sig, True)
    assert rest_codec.dumps(doc) == b'{"predictions":[[0.1,0.7]]}'  # shortest float32 text, not 0.10000000149


def test_row_format_needs_outputs_with_a_common_batch_dimension() -> None:
    sig = _sig({"x": ("string", (None,))}, {"a": ("float32", (None,)), "b": ("float32", (None,))})
    with pytest.raises(InvalidArgument, match="columnar"):
        rest_codec.encode_predictions({"a": np.zeros(2, np.float32), "b": np.zeros(3, np.float32)}, sig, True)


def test_deep_json_is_refused_before_parsing_on_every_python() -> None:
    """An explicit depth limit, not Python's recursion limit (Python 3.13's json no longer raises RecursionError)."""
    for body in (b"[" * 100_000, b'{"a":' * 600 + b"1" + b"}" * 600):
        with pytest.raises(InvalidArgument) as info:
            rest_codec.parse_json(body)
        assert info.value.message == "JSON Parse error: the document is nested too deeply"
    depth = rest_codec.MAX_JSON_DEPTH
    assert rest_codec.parse_json(b"[" * depth + b"]" * depth) is not None
    brackets_in_strings = '{"instances": ["' + "[{" * 5000 + '", "\\"[[["]}'
    assert rest_codec.nesting_depth(brackets_in_strings) == 2
    assert rest_codec.parse_json(brackets_in_strings.encode())["instances"][1] == '"[[['
