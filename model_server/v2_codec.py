"""Open Inference Protocol (KServe V2) tensors <-> NumPy: datatypes, shapes, JSON data, typed and raw contents.

Both transports reduce a request to :class:`V2Input` values (JSON ``data``, gRPC ``contents`` or raw bytes) and turn
them into arrays here, so REST and gRPC accept and refuse the same tensors. Raw contents are the flattened row-major
elements; a ``BYTES`` element is a 4-byte little-endian length followed by its bytes (Triton's layout). Every
malformation is the client's :class:`InvalidArgument`, never anything else.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from model_server.errors import InvalidArgument
from model_server.model import SignatureInfo
from model_server.tensors import DType, TensorInfo

MAX_DEPTH = 32  # nesting of JSON data beyond any real tensor's rank is refused before recursing


@dataclasses.dataclass(frozen=True)
class V2Type:
    """One V2 datatype: its name on the wire, the NumPy dtype, the ``InferTensorContents`` field carrying it."""

    name: str
    numpy: np.dtype
    contents_field: str | None  # None: raw contents only (FP16)

    @property
    def is_bytes(self) -> bool:
        return self.name == "BYTES"


_TYPES = [
    V2Type("BOOL", np.dtype(np.bool_), "bool_contents"),
    V2Type("UINT8", np.dtype(np.uint8), "uint_contents"),
    V2Type("UINT16", np.dtype(np.uint16), "uint_contents"),
    V2Type("UINT32", np.dtype(np.uint32), "uint_contents"),
    V2Type("UINT64", np.dtype(np.uint64), "uint64_contents"),
    V2Type("INT8", np.dtype(np.int8), "int_contents"),
    V2Type("INT16", np.dtype(np.int16), "int_contents"),
    V2Type("INT32", np.dtype(np.int32), "int_contents"),
    V2Type("INT64", np.dtype(np.int64), "int64_contents"),
    V2Type("FP16", np.dtype(np.float16), None),
    V2Type("FP32", np.dtype(np.float32), "fp32_contents"),
    V2Type("FP64", np.dtype(np.float64), "fp64_contents"),
    V2Type("BYTES", np.dtype(object), "bytes_contents"),
]
BY_NAME = {t.name: t for t in _TYPES}
_BY_TF = {"bool": "BOOL", "string": "BYTES", "float16": "FP16", "float32": "FP32", "float64": "FP64"}


def v2_type(dtype: DType) -> V2Type:
    """The V2 datatype of a signature tensor (``string`` -> ``BYTES``, ``float32`` -> ``FP32``, ``int64`` ...)."""
    return BY_NAME[_BY_TF.get(dtype.name, dtype.name.upper())]


def datatype(name: str, tensor: str) -> V2Type:
    t = BY_NAME.get(name) if isinstance(name, str) else None
    if t is None:
        known = ", ".join(BY_NAME)
        raise InvalidArgument(f"Input '{tensor}': unsupported datatype {str(name)[:30]!r}; this server knows {known}")
    return t


def metadata_shape(info: TensorInfo) -> list[int]:
    """The signature's shape as V2 metadata says it: -1 for a dimension of any size, ``[-1]`` for unknown rank."""
    return [-1] if info.shape is None else [-1 if d is None else int(d) for d in info.shape]


@dataclasses.dataclass
class V2Input:
    """One request tensor as a transport found it: exactly one of ``values`` (JSON data or typed contents) or
    ``raw`` is set."""

    name: str
    datatype: str
    shape: Sequence[int]
    values: Any = None
    raw: bytes | None = None


def check_shape(shape: Any, name: str) -> tuple[tuple[int, ...], int]:
    """The shape as a tuple and its element count; V2 shapes are lists of non-negative integers."""
    if not isinstance(shape, Sequence | np.ndarray) or isinstance(shape, str | bytes):
        raise InvalidArgument(f"Input '{name}': 'shape' must be a list of non-negative integers")
    dims = []
    for d in shape:
        if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 0:
            raise InvalidArgument(f"Input '{name}': 'shape' must be a list of non-negative integers, got {d!r:.30}")
        dims.append(int(d))
    if len(dims) > MAX_DEPTH:
        raise InvalidArgument(f"Input '{name}': shape of rank {len(dims)} exceeds the limit of {MAX_DEPTH}")
    return tuple(dims), math.prod(dims)


def to_array(tensor: V2Input, sig: SignatureInfo) -> np.ndarray:
    """Decode one input; its datatype must be the signature's (no silent casts, as TF Serving does not cast)."""
    t = datatype(tensor.datatype, tensor.name)
    info = sig.inputs.get(tensor.name)
    if info is not None and v2_type(info.dtype).name != t.name:
        raise InvalidArgument(
            f"Input '{tensor.name}' has datatype {t.name} but the model expects {v2_type(info.dtype).name}"
        )
    shape, count = check_shape(tensor.shape, tensor.name)
    if tensor.raw is not None:
        return _from_raw(tensor.raw, t, shape, count, tensor.name)
    flat: list[Any] = []
    _flatten(tensor.values, flat, 0, tensor.name)
    if len(flat) != count:
        raise InvalidArgument(
            f"Input '{tensor.name}': {len(flat)} values given but shape {list(shape)} needs {count} elements"
        )
    return _from_values(flat, t, tensor.name).reshape(shape)


def _flatten(value: Any, out: list[Any], depth: int, name: str) -> None:
    if depth > MAX_DEPTH:
        raise InvalidArgument(f"Input '{name}': data nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, list | tuple):
        for v in value:
            _flatten(v, out, depth + 1, name)
    elif depth == 0:
        raise InvalidArgument(f"Input '{name}': 'data' must be a list of values")
    else:
        out.append(value)


def _bad_value(name: str, t: V2Type, value: Any) -> InvalidArgument:
    return InvalidArgument(f"Input '{name}': {value!r:.40} is not a valid {t.name} value")


def _from_values(flat: list[Any], t: V2Type, name: str) -> np.ndarray:
    if t.is_bytes:
        arr = np.empty(len(flat), dtype=object)
        for i, v in enumerate(flat):
            if isinstance(v, str):
                try:
                    v = v.encode("utf-8")
                except UnicodeEncodeError:
                    raise InvalidArgument(f"Input '{name}' element {i} is not valid Unicode text") from None
            elif not isinstance(v, bytes):
                raise _bad_value(name, t, v)
            arr[i] = v
        return arr
    if t.name == "BOOL":
        if not all(isinstance(v, bool | np.bool_) for v in flat):
            raise _bad_value(name, t, next(v for v in flat if not isinstance(v, bool | np.bool_)))
        return np.array(flat, dtype=np.bool_)
    if t.numpy.kind in "iu":
        info = np.iinfo(t.numpy)
        for v in flat:
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or not info.min <= v <= info.max:
                raise _bad_value(name, t, v)
        return np.array(flat, dtype=t.numpy)
    for v in flat:  # FP16 / FP32 / FP64: JSON numbers, integers included
        if isinstance(v, bool) or not isinstance(v, int | float | np.floating | np.integer):
            raise _bad_value(name, t, v)
    try:
        with np.errstate(over="ignore"):  # a finite double beyond float32's range becomes inf, as TF's cast does
            return np.array(flat, dtype=np.float64).astype(t.numpy)
    except OverflowError:  # an integer beyond a double's range
        raise InvalidArgument(f"Input '{name}': a value is out of the range of {t.name}") from None


def _from_raw(raw: bytes, t: V2Type, shape: tuple[int, ...], count: int, name: str) -> np.ndarray:
    if not t.is_bytes:
        need = count * t.numpy.itemsize
        if len(raw) != need:
            raise InvalidArgument(
                f"Input '{name}': raw contents hold {len(raw)} bytes but shape {list(shape)} of {t.name} needs {need}"
            )
        return np.frombuffer(raw, dtype=t.numpy.newbyteorder("<")).astype(t.numpy).reshape(shape)
    if count * 4 > len(raw):  # every element has a 4-byte length: refuse before allocating
        raise InvalidArgument(f"Input '{name}': {len(raw)} bytes of raw BYTES contents cannot hold {count} elements")
    arr = np.empty(count, dtype=object)
    offset = 0
    for i in range(count):
        if offset + 4 > len(raw):
            raise InvalidArgument(f"Input '{name}': raw BYTES contents end before element {i} of {count}")
        (size,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + size > len(raw):
            raise InvalidArgument(f"Input '{name}': raw BYTES element {i} claims {size} bytes past the end")
        arr[i] = raw[offset : offset + size]
        offset += size
    if offset != len(raw):
        raise InvalidArgument(
            f"Input '{name}': raw BYTES contents hold {len(raw) - offset} bytes beyond {count} elements"
        )
    return arr.reshape(shape)


def to_raw(arr: np.ndarray, t: V2Type) -> bytes:
    """An output as raw contents (little-endian elements; ``BYTES``: length-prefixed)."""
    if t.is_bytes:
        parts = []
        for v in arr.ravel():
            b = v if isinstance(v, bytes) else str(v).encode("utf-8")
            parts.append(struct.pack("<I", len(b)))
            parts.append(b)
        return b"".join(parts)
    return np.ascontiguousarray(arr, dtype=t.numpy.newbyteorder("<")).tobytes()


def to_json_data(arr: np.ndarray, t: V2Type, name: str) -> list[Any]:
    """An output's flat ``data`` list: float32 as its shortest round-trip decimal, BYTES as UTF-8 text."""
    flat = arr.ravel()
    if t.is_bytes:
        out = []
        for v in flat:
            b = v if isinstance(v, bytes) else str(v).encode("utf-8")
            try:
                out.append(b.decode("utf-8"))
            except UnicodeDecodeError:
                raise InvalidArgument(
                    f"Output '{name}' holds bytes that are not UTF-8 text: request it with "
                    f'"parameters": {{"binary_data": true}}'
                ) from None
        return out
    if t.name in ("FP32", "FP16"):
        return [float(str(x)) for x in flat]
    values: list[Any] = flat.astype(t.numpy, copy=False).tolist()
    return values


def parameter_value(param: Any) -> Any:
    """The value of a gRPC ``InferParameter`` (whichever member of its oneof is set; None if none)."""
    which = param.WhichOneof("parameter_choice")
    return None if which is None else getattr(param, which)


def string_parameter(parameters: Mapping[str, Any], key: str, default: str) -> str:
    value = parameters.get(key, default)
    if not isinstance(value, str):
        raise InvalidArgument(f"Parameter '{key}' must be a string")
    return value or default


def bool_parameter(parameters: Mapping[str, Any], key: str) -> bool:
    value = parameters.get(key, False)
    if not isinstance(value, bool):
        raise InvalidArgument(f"Parameter '{key}' must be a boolean")
    return value
