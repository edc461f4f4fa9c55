"""JSON <-> tensors for TF Serving's REST predict API (row and columnar formats), as ``json_tensor.cc`` behaves.

Every malformed body becomes an :class:`InvalidArgument` with TF Serving's wording where it has one; nothing here
can raise anything else for any input, which the fuzz test checks.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
from typing import Any

import numpy as np

from model_server.errors import InvalidArgument
from model_server.model import SignatureInfo
from model_server.tensors import DType, TensorInfo

MAX_DEPTH = 32  # nesting beyond any real tensor's rank: refuse before recursing
# Nesting of the JSON document itself, checked before parsing: Python's json recurses once per level (3.11 raises
# RecursionError near 1000 levels, 3.13 goes on until the C stack runs out), so the limit is ours, the same on both.
MAX_JSON_DEPTH = 512
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_VALUE_PREVIEW = 100  # error messages quote at most this much of the offending value


@dataclasses.dataclass
class PredictBody:
    signature_name: str
    row_format: bool
    payload: Any


def _json_type(v: Any) -> str:
    if v is None:
        return "Null"
    if v is True:
        return "True"
    if v is False:
        return "False"
    if isinstance(v, dict):
        return "Object"
    if isinstance(v, list):
        return "Array"
    if isinstance(v, str):
        return "String"
    return "Number"


def _preview(v: Any) -> str:
    try:
        text = json.dumps(v, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        text = "..."
    return text if len(text) <= _VALUE_PREVIEW else text[:_VALUE_PREVIEW] + "..."


def _type_error(v: Any, dtype: DType) -> InvalidArgument:
    return InvalidArgument(f"JSON Value: {_preview(v)} Type: {_json_type(v)} is not of expected type: {dtype.display}")


def nesting_depth(text: str) -> int:
    """How deeply arrays and objects nest in a JSON text (brackets inside strings do not count)."""
    if text.count("[") + text.count("{") == 0:
        return 0
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    if not brackets:
        return 0
    codes = np.frombuffer(brackets.encode("ascii"), dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1)
    return int(np.cumsum(steps).max(initial=0))


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise InvalidArgument("JSON Parse error: The document is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArgument(f"JSON Parse error: Invalid encoding in string (byte offset {exc.start})") from None
    # A text with fewer brackets than the limit cannot nest deeper: the common request skips the scan.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and nesting_depth(text) > MAX_JSON_DEPTH:
        raise InvalidArgument("JSON Parse error: the document is nested too deeply")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"JSON Parse error: {exc.msg} at offset {exc.pos}") from None
    except RecursionError:  # a deep stack on entry can still hit the interpreter's limit first
        raise InvalidArgument("JSON Parse error: the document is nested too deeply") from None


def parse_predict_body(body: bytes) -> PredictBody:
    doc = parse_json(body)
    if not isinstance(doc, dict):
        raise InvalidArgument(f"Request body must be a JSON object, got {_json_type(doc)}")
    signature_name = doc.get("signature_name", None)
    if signature_name is None:
        signature_name = "serving_default"
    elif not isinstance(signature_name, str):
        raise InvalidArgument(f"'signature_name' must be a string, got {_json_type(signature_name)}")
    has_instances = "instances" in doc
    has_inputs = "inputs" in doc
    if has_instances and has_inputs:
        raise InvalidArgument("Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist")
    if not has_instances and not has_inputs:
        raise InvalidArgument("Missing 'inputs' or 'instances' key")
    return PredictBody(
        signature_name or "serving_default", has_instances, doc["instances"] if has_instances else doc["inputs"]
    )


def _is_b64(v: Any) -> bool:
    return isinstance(v, dict) and len(v) == 1 and "b64" in v


def _scalar(v: Any, dtype: DType) -> Any:
    if dtype.is_string:
        if isinstance(v, str):
            try:
                return v.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate such as "\ud800"
                raise InvalidArgument("String value is not valid Unicode (unpaired surrogate)") from None
        if _is_b64(v):
            raw = v["b64"]
            if not isinstance(raw, str):
                raise InvalidArgument(f"'b64' value must be a string, got {_json_type(raw)}")
            try:
                return base64.b64decode(raw.encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError, ValueError):
                raise InvalidArgument(f"Unable to base64 decode: {_preview(raw)}") from None
        raise _type_error(v, dtype)
    if isinstance(v, bool):
        if dtype.is_bool:
            return v
        raise _type_error(v, dtype)
    if dtype.is_bool:
        raise _type_error(v, dtype)
    if isinstance(v, int):
        return v
    if isinstance(v, float) and dtype.is_float:
        return v
    raise _type_error(v, dtype)


def _flatten(v: Any, dtype: DType, flat: list, depth: int) -> tuple[int, ...]:
    """Append scalars to ``flat`` and return the shape; lists must be rectangular."""
    if isinstance(v, list):
        if depth >= MAX_DEPTH:
            raise InvalidArgument(f"Tensor value is nested deeper than {MAX_DEPTH} levels")
        if not v:
            return (0,)
        first = _flatten(v[0], dtype, flat, depth + 1)
        for item in v[1:]:
            shape = _flatten(item, dtype, flat, depth + 1)
            if shape != first:
                raise InvalidArgument(
                    f"Expecting tensor to be rectangular: found a sub-list of shape {list(shape)} after one of "
                    f"shape {list(first)}"
                )
        return (len(v),) + first
    flat.append(_scalar(v, dtype))
    return ()


def _to_array(value: Any, info: TensorInfo) -> np.ndarray:
    dtype = info.dtype
    if dtype.is_string and isinstance(value, list) and all(type(v) is str for v in value):
        arr = np.empty(len(value), dtype=object)  # fast path: a flat list of strings (the common request)
        try:
            arr[:] = [v.encode("utf-8") for v in value]
        except UnicodeEncodeError:
            raise InvalidArgument("String value is not valid Unicode (unpaired surrogate)") from None
        return arr
    flat: list = []
    shape = _flatten(value, dtype, flat, 0)
    if dtype.is_string:
        arr = np.empty(len(flat), dtype=object)
        arr[:] = flat
        return arr.reshape(shape)
    try:
        return np.array(flat, dtype=dtype.numpy).reshape(shape)
    except (OverflowError, ValueError):
        raise InvalidArgument(f"Input '{info.name}': a value does not fit dtype {dtype.display}") from None


def decode_instances(instances: Any, sig: SignatureInfo) -> dict[str, np.ndarray]:
    """Row format: a list of instances, each a bare value (one input) or an object keyed by input name."""
    if not isinstance(instances, list):
        raise InvalidArgument(f"Expecting 'instances' to be an list/array, got {_json_type(instances)}")
    if not instances:
        raise InvalidArgument("The request has an empty batch: 'instances' is an empty list")
    names = list(sig.inputs)
    single = len(names) == 1
    named = [isinstance(x, dict) and not _is_b64(x) for x in instances]
    if single and not any(named):
        return {names[0]: _to_array(instances, sig.inputs[names[0]])}
    if not all(named):
        if single:
            raise InvalidArgument("Instances must be all bare values or all objects keyed by input name")
        i = named.index(False)
        raise InvalidArgument(
            f"Expecting object but got {_json_type(instances[i])} at item {i} of 'instances' list: with several "
            f"inputs every instance is an object keyed by input name"
        )
    columns: dict[str, list] = {n: [] for n in names}
    for i, instance in enumerate(instances):
        if set(instance) != set(names):
            extra = sorted(set(instance) - set(names))
            missing = sorted(set(names) - set(instance))
            raise InvalidArgument(
                f"Failed to process element: {i} of 'instances' list. JSON object keys do not match the "
                f"signature inputs. Send extra: {{{','.join(extra)}}}. Missing but required: {{{','.join(missing)}}}."
            )
        for n in names:
            columns[n].append(instance[n])
    return {n: _to_array(columns[n], sig.inputs[n]) for n in names}


def decode_inputs(inputs: Any, sig: SignatureInfo) -> dict[str, np.ndarray]:
    """Columnar format: one value for a single-input signature, else an object naming every input."""
    names = list(sig.inputs)
    if isinstance(inputs, dict) and not _is_b64(inputs):
        keys = set(inputs)
        if keys != set(names):
            # TF Serving ignores extra keys here; the issue asks for a 4xx on extra inputs, and a typo should not be
            # silently dropped.
            extra = sorted(keys - set(names))
            missing = sorted(set(names) - keys)
            raise InvalidArgument(
                f"'inputs' keys do not match the signature inputs. Send extra: {{{','.join(extra)}}}. "
                f"Missing but required: {{{','.join(missing)}}}."
            )
        return {n: _to_array(inputs[n], sig.inputs[n]) for n in names}
    if len(names) != 1:
        raise InvalidArgument(f"'inputs' must be an object naming every input: {{{','.join(names)}}}")
    return {names[0]: _to_array(inputs, sig.inputs[names[0]])}


def _float32_list(arr: np.ndarray) -> Any:
    """Shortest round-trip decimal of each float32 (0.8807971, not 0.8807970881462097)."""
    if arr.ndim == 0:
        return float(str(arr[()]))
    if arr.ndim == 1:
        return [float(str(x)) for x in arr]
    return [_float32_list(x) for x in arr]


def _bytes_list(arr: Any, as_b64: bool) -> Any:
    if isinstance(arr, np.ndarray):
        if arr.ndim == 0:
            return _bytes_list(arr[()], as_b64)
        return [_bytes_list(x, as_b64) for x in arr]
    v = arr if isinstance(arr, bytes) else str(arr).encode("utf-8")
    return {"b64": base64.b64encode(v).decode("ascii")} if as_b64 else v.decode("utf-8", "replace")


def _to_json(name: str, arr: np.ndarray, dtype: DType) -> Any:
    if dtype.is_string or arr.dtype == object:
        return _bytes_list(arr, name.endswith("_bytes"))
    if arr.dtype == np.float32:
        return _float32_list(arr)
    return arr.tolist()


def encode_predictions(outputs: dict[str, np.ndarray], sig: SignatureInfo, row_format: bool) -> dict[str, Any]:
    converted = {k: _to_json(k, v, sig.outputs[k].dtype) for k, v in outputs.items()}
    if not row_format:
        if len(converted) == 1:
            return {"outputs": next(iter(converted.values()))}
        return {"outputs": converted}
    if len(converted) == 1:
        return {"predictions": next(iter(converted.values()))}
    sizes = {int(v.shape[0]) if v.ndim else None for v in outputs.values()}
    rows = sizes.pop() if len(sizes) == 1 else None
    if rows is None:
        raise InvalidArgument(
            "Outputs do not share a batch dimension, so they cannot be returned per instance; use the columnar "
            "'inputs' format"
        )
    keys = list(converted)
    return {"predictions": [{k: converted[k][i] for k in keys} for i in range(rows)]}


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
