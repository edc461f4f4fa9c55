"""The Classify / Regress request codec and TF Serving's signature and output checks, in process (no server)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tensorflow.core.example import example_pb2
from tensorflow_serving.apis import (
    classification_pb2,
)

from model_server import example_apis as ea
from model_server.errors import InvalidArgument
from model_server.example_codec import input_examples, parse_examples_body
from model_server.model import ServableModel, SignatureInfo
from model_server.tensors import STRING, TensorInfo

# --- the codec and the checks, in process ---------------------------------------------------------------------------


def _parsed(doc: object) -> list[example_pb2.Example]:
    return [example_pb2.Example.FromString(b) for b in parse_examples_body(json.dumps(doc).encode()).examples]


def test_json_features_take_tf_servings_kinds_and_the_context_merges_under_each_example() -> None:
    doc = {"context": {"x": 1.0, "k": "ctx"}, "examples": [{"x": 2.0, "n": 3, "b": True, "raw": {"b64": "/wA="}}, {}]}
    first, second = _parsed(doc)
    f = first.features.feature
    assert list(f["x"].float_list.value) == [2.0]  # the example's value wins over the context's
    assert list(f["k"].bytes_list.value) == [b"ctx"]
    assert list(f["n"].int64_list.value) == [3] and list(f["b"].int64_list.value) == [1]
    assert list(f["raw"].bytes_list.value) == [b"\xff\x00"]
    assert list(second.features.feature["x"].float_list.value) == [1.0]
    [big] = _parsed({"examples": [{"x": 2**70, "e": []}]})
    assert big.features.feature["x"].WhichOneof("kind") == "float_list"  # past 64 bits JSON reads a double
    assert big.features.feature["e"].WhichOneof("kind") is None


def test_grpc_input_with_context_is_the_context_then_the_example() -> None:
    request = classification_pb2.ClassificationRequest()
    listed = request.input.example_list_with_context
    listed.context.features.feature["x"].float_list.value.append(1.0)
    listed.examples.add().features.feature["y"].float_list.value.append(2.0)
    [serialized] = input_examples(request.input)
    assert serialized == listed.context.SerializeToString() + listed.examples[0].SerializeToString()
    assert input_examples(classification_pb2.ClassificationRequest().input).shape == (0,)


def _sig(method: str, inputs: tuple[str, ...], outputs: tuple[str, ...]) -> SignatureInfo:
    def info(name: str) -> TensorInfo:
        return TensorInfo(name, STRING, (None,))

    return SignatureInfo("s", {n: info(n) for n in inputs}, {n: info(n) for n in outputs}, method)


def test_the_method_name_check_is_tf_servings_optional_one() -> None:
    model = ServableModel("m", 1, "/nowhere")  # not loaded: no SignatureDef to quote
    native_tf2 = _sig(ea.PREDICT_METHOD_NAME, ("inputs",), ("classes", "scores"))
    ea.check_classification(model, native_tf2, method_check=False)  # TF Serving's default: the structure decides
    with pytest.raises(InvalidArgument) as info:
        ea.check_classification(model, native_tf2, method_check=True)
    assert info.value.message == (
        "Expected classification signature method_name to be tensorflow/serving/classify. "
        "Was: tensorflow/serving/predict"
    )
    ea.check_regression(model, _sig(ea.REGRESS_METHOD_NAME, ("inputs",), ("outputs",)), method_check=True)
    for sig, message in (
        (_sig(ea.CLASSIFY_METHOD_NAME, ("inputs", "x"), ("scores",)), "Expected one input Tensor."),
        (_sig(ea.CLASSIFY_METHOD_NAME, ("inputs",), ("a", "b", "c")), "Expected one or two output Tensors, found 3"),
    ):
        with pytest.raises(InvalidArgument, match=message):
            ea.check_classification(model, sig, method_check=False)
    with pytest.raises(InvalidArgument, match="Expected one output Tensor."):
        ea.check_regression(model, _sig(ea.REGRESS_METHOD_NAME, ("inputs",), ("outputs", "y")), method_check=False)


def test_outputs_are_checked_as_tf_serving_post_processes_them() -> None:
    scores = np.ones((2, 2), np.float32)
    labels = np.array([[b"a", b"b"]] * 2, dtype=object)
    assert ea.classifications({"classes": labels, "scores": scores}, 2).shape == (2, 2)
    for outputs, message in (
        ({"scores": np.ones(2, np.float32)}, "Expected Tensor shape: [batch_size num_classes] but got [2]"),
        ({"scores": np.ones((2, 2))}, "Expected scores Tensor of DT_FLOAT. Got: DT_DOUBLE"),
        ({"scores": np.ones((3, 2), np.float32)}, "Expected scores output batch size of 2. Got: 3"),
        (
            {"classes": labels[:, :1], "scores": scores},
            "Tensors class and score should match in dim_size(1). Got 1 vs. 2",
        ),
    ):
        with pytest.raises(InvalidArgument) as info:
            ea.classifications(outputs, 2)
        assert info.value.message == message
    assert ea.regressions({"outputs": np.ones((2, 1), np.float32)}, 2).values.shape == (2,)
    for values, message in (
        (
            np.ones((2, 2), np.float32),
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got [2,2]",
        ),
        (np.ones(3, np.float32), "Input batch size did not match output batch size: 2 vs. 3"),
        (np.ones(2, np.int64), "Expected output Tensor of DT_FLOAT.  Got: DT_INT64"),
    ):
        with pytest.raises(InvalidArgument) as info:
            ea.regressions({"outputs": values}, 2)
        assert info.value.message == message
