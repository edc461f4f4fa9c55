"""Wire formats of Classify / Regress / MultiInference: TF Serving's ``Input`` proto and REST ``examples`` JSON in,
``ClassificationResult`` / ``RegressionResult`` (proto) and ``{"results": ...}`` (JSON) out.

Both inputs become one string tensor of serialized ``tf.Example``s, as ``InputToSerializedExampleTensor`` builds it:
with a context, each entry is the serialized context followed by the serialized example, so on parsing the
example's features override the context's. The JSON side follows ``json_tensor.cc`` (features as numbers, strings,
lists or ``{"b64": ...}``; a JSON integer is an int64 feature, a number with a fraction or exponent a float one).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from typing import Any

import numpy as np

from model_server.errors import InvalidArgument
from model_server.example_apis import Classifications, ExamplesResult, Regressions
from model_server.rest_codec import dumps, parse_json

_DEBUG_LIMIT = 256  # TF Serving's kMaxJsonDebugStringBytes: how much of the request an error message quotes
_INT64 = (-(2**63), 2**63 - 1)
_UINT64_MAX = 2**64 - 1


def _serialized(values: list[bytes]) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


def input_examples(input_proto: Any) -> np.ndarray:
    """A ``tensorflow.serving.Input`` as TF Serving feeds it: serialized examples, each prefixed by the context."""
    kind = input_proto.WhichOneof("kind")
    if kind == "example_list":
        return _serialized([ex.SerializeToString() for ex in input_proto.example_list.examples])
    if kind == "example_list_with_context":
        listed = input_proto.example_list_with_context
        context = listed.context.SerializeToString()
        return _serialized([context + ex.SerializeToString() for ex in listed.examples])
    return _serialized([])


# --- REST request ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ExamplesBody:
    signature_name: str  # "" when the body names none (serving_default)
    examples: np.ndarray  # serialized tf.Examples, context merged in


def _debug(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= _DEBUG_LIMIT else text[:_DEBUG_LIMIT]


def _json_type(v: Any) -> str:
    if v is None:
        return "Null"
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, dict):
        return "Object"
    if isinstance(v, list):
        return "Array"
    if isinstance(v, str):
        return "String"
    return "Number"


def _format_error(doc: Any, message: str) -> InvalidArgument:
    return InvalidArgument(f"JSON Value: {_debug(doc)} {message}")


class _Feature:
    """One feature's values while they are read; its kind is fixed by the first value (TF Serving's rule)."""

    __slots__ = ("name", "kind", "values")

    def __init__(self, name: str) -> None:
        self.name = name
        self.kind: str | None = None  # "bytes", "float", "int64"
        self.values: list[Any] = []

    def add(self, kind: str, value: Any) -> None:
        if self.kind is not None and self.kind != kind:
            raise InvalidArgument(f"Unexpected element type in feature: {self.name} expecting type: {self.kind}")
        self.kind = kind
        self.values.append(value)

    def add_json(self, v: Any) -> None:
        if isinstance(v, bool):
            self.add("int64", int(v))
        elif isinstance(v, str):
            try:
                self.add("bytes", v.encode("utf-8"))
            except UnicodeEncodeError:  # a lone surrogate such as "\ud800"
                raise InvalidArgument(f"Feature: {self.name} has a string that is not valid Unicode") from None
        elif isinstance(v, float):
            self.add("float", v)
        elif isinstance(v, int):
            if _INT64[0] <= v <= _INT64[1]:
                self.add("int64", v)
            elif _INT64[1] < v <= _UINT64_MAX:
                raise InvalidArgument(f"Feature: {self.name} has uint64_t element. Only int64_t is supported.")
            else:  # beyond 64 bits JSON parsers read a double
                self.add("float", float(v))
        elif isinstance(v, dict) and set(v) == {"b64"} and isinstance(v["b64"], str):
            try:
                self.add("bytes", base64.b64decode(v["b64"].encode("ascii"), validate=True))
            except (binascii.Error, UnicodeEncodeError, ValueError):
                raise InvalidArgument("Unable to base64 decode") from None
        else:
            raise InvalidArgument(f"Feature: {self.name} has element with unexpected JSON type: {_json_type(v)}")


def _example(doc: Any) -> Any:
    """``MakeExampleFromJsonObject``: an object of feature name -> value or list of values."""
    from tensorflow.core.example import example_pb2

    if not isinstance(doc, dict):
        raise InvalidArgument(f"Example must be JSON object but got JSON {_json_type(doc)}")
    example = example_pb2.Example()
    for name, content in doc.items():
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidArgument("Feature name is not valid Unicode (unpaired surrogate)") from None
        feature = _Feature(name)
        for v in content if isinstance(content, list) else [content]:
            feature.add_json(v)
        proto = example.features.feature[name]
        if feature.kind == "bytes":
            proto.bytes_list.value.extend(feature.values)
        elif feature.kind == "float":
            proto.float_list.value.extend(feature.values)
        elif feature.kind == "int64":
            proto.int64_list.value.extend(feature.values)
    return example


def parse_examples_body(body: bytes) -> ExamplesBody:
    """A ``:classify`` / ``:regress`` body: ``{"signature_name": ..., "context": {...}, "examples": [{...}, ...]}``."""
    doc = parse_json(body)
    if not isinstance(doc, dict):
        raise _format_error(doc, "Is not object")
    signature_name = doc.get("signature_name", "")
    if not isinstance(signature_name, str):
        raise _format_error(doc, "not formatted correctly. 'signature_name' key must be a string value.")
    context = b""
    if "context" in doc:
        context = _example(doc["context"]).SerializeToString()
    if "examples" not in doc:
        # TF Serving's words, for :regress too
        raise _format_error(doc, "When method is classify, key 'examples' is expected and was not found")
    examples = doc["examples"]
    if not isinstance(examples, list):
        raise _format_error(doc, "Expecting 'examples' value to be an list/array")
    if not examples:
        raise _format_error(doc, "'examples' value is an empty array")
    return ExamplesBody(signature_name, _serialized([context + _example(e).SerializeToString() for e in examples]))


# --- responses -------------------------------------------------------------------------------------------------


def _label(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _score(value: Any) -> float:
    """The shortest decimal that reads back as the same float32 (TF Serving's ``WriteDecimal``)."""
    return float(str(np.float32(value)))


def _classes(result: Classifications) -> list[list[tuple[str, float]]]:
    """Per example, ``(label, score)`` pairs; a missing output reads as the proto default ("" / 0.0)."""
    n, k = result.shape
    return [
        [
            (
                _label(result.labels[i, c]) if result.labels is not None else "",
                _score(result.scores[i, c]) if result.scores is not None else 0.0,
            )
            for c in range(k)
        ]
        for i in range(n)
    ]


def results_json(result: ExamplesResult) -> bytes:
    """The REST answer of a single-task call: ``{"results": [[[label, score], ...], ...]}`` or ``[value, ...]``."""
    task = result.results[0].result
    if isinstance(task, Regressions):
        return dumps({"results": [_score(v) for v in task.values]})
    return dumps({"results": [[list(pair) for pair in row] for row in _classes(task)]})


def fill_result(result: Classifications | Regressions, out: Any) -> None:
    """Into a ``ClassificationResult`` (classifications) or a ``RegressionResult`` (regressions)."""
    if isinstance(result, Regressions):
        for value in result.values.tolist():
            out.regressions.add(value=value)
        return
    for row in _classes(result):
        classifications = out.classifications.add()
        for label, score in row:
            classifications.classes.add(label=label, score=score)


def fill_inference_result(result: Classifications | Regressions, out: Any) -> None:
    """Into a MultiInference ``InferenceResult``: its classification_result or regression_result."""
    fill_result(result, out.regression_result if isinstance(result, Regressions) else out.classification_result)
