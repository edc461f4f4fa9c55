"""Tensor types shared by every layer, and NumPy <-> ``TensorProto`` conversion for gRPC and warm-up records.

Dtypes are described without TensorFlow objects so the data plane and the REST codec stay cheap; conversion to and
from ``TensorProto`` uses the ``*_val`` fields on output like TF Serving (``AsProtoField``), because many clients read
``response.outputs["probability"].float_val`` directly, and accepts ``tensor_content`` or ``*_val`` on input.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from model_server.errors import InvalidArgument


@dataclasses.dataclass(frozen=True)
class DType:
    name: str  # tf.DType.name, e.g. "float32"
    display: str  # TF's DataTypeString, used in TF Serving's error messages, e.g. "float"
    enum: int  # types_pb2 value
    numpy: np.dtype
    val_field: str  # TensorProto field holding values

    @property
    def is_string(self) -> bool:
        return self.enum == types_pb2.DT_STRING

    @property
    def is_integer(self) -> bool:
        return self.numpy.kind in "iu"

    @property
    def is_float(self) -> bool:
        return self.numpy.kind == "f"

    @property
    def is_bool(self) -> bool:
        return self.numpy.kind == "b"


_DTYPES = [
    DType("float32", "float", types_pb2.DT_FLOAT, np.dtype(np.float32), "float_val"),
    DType("float64", "double", types_pb2.DT_DOUBLE, np.dtype(np.float64), "double_val"),
    DType("float16", "half", types_pb2.DT_HALF, np.dtype(np.float16), "half_val"),
    DType("int32", "int32", types_pb2.DT_INT32, np.dtype(np.int32), "int_val"),
    DType("int16", "int16", types_pb2.DT_INT16, np.dtype(np.int16), "int_val"),
    DType("int8", "int8", types_pb2.DT_INT8, np.dtype(np.int8), "int_val"),
    DType("uint8", "uint8", types_pb2.DT_UINT8, np.dtype(np.uint8), "int_val"),
    DType("uint16", "uint16", types_pb2.DT_UINT16, np.dtype(np.uint16), "int_val"),
    DType("int64", "int64", types_pb2.DT_INT64, np.dtype(np.int64), "int64_val"),
    DType("uint32", "uint32", types_pb2.DT_UINT32, np.dtype(np.uint32), "uint32_val"),
    DType("uint64", "uint64", types_pb2.DT_UINT64, np.dtype(np.uint64), "uint64_val"),
    DType("bool", "bool", types_pb2.DT_BOOL, np.dtype(np.bool_), "bool_val"),
    DType("string", "string", types_pb2.DT_STRING, np.dtype(object), "string_val"),
]
BY_NAME = {d.name: d for d in _DTYPES}
BY_ENUM = {d.enum: d for d in _DTYPES}
BY_NUMPY = {d.numpy: d for d in _DTYPES}
STRING = BY_NAME["string"]


def dtype_by_name(name: str) -> DType | None:
    return BY_NAME.get(name)


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One named input or output of a signature: its dtype and shape (``None`` = any size)."""

    name: str
    dtype: DType
    shape: tuple[int | None, ...] | None  # None: unknown rank

    @property
    def batched(self) -> bool:
        return self.shape is not None and len(self.shape) >= 1 and self.shape[0] is None


def numpy_display(dtype: np.dtype) -> str:
    """TF's name for an array's dtype, as error messages say it ("float", not "float32")."""
    d = BY_NUMPY.get(dtype)
    return d.display if d is not None else str(dtype)


def dtype_name(enum: int) -> str:
    d = BY_ENUM.get(enum)
    if d is not None:
        return d.display
    return types_pb2.DataType.Name(enum).removeprefix("DT_").lower() if enum in types_pb2.DataType.values() else "?"


def proto_to_ndarray(proto: tensor_pb2.TensorProto, name: str) -> np.ndarray:
    """Decode a request tensor; every malformation is the client's INVALID_ARGUMENT, never a crash."""
    d = BY_ENUM.get(proto.dtype)
    if d is None:
        raise InvalidArgument(f"Input '{name}': unsupported dtype {dtype_name(proto.dtype)}")
    if proto.tensor_shape.unknown_rank:
        raise InvalidArgument(f"Input '{name}': the tensor shape must be known")
    shape = tuple(int(dim.size) for dim in proto.tensor_shape.dim)
    if any(s < 0 for s in shape):
        raise InvalidArgument(f"Input '{name}': negative dimension in shape {list(shape)}")
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if d.is_string:
        values = list(proto.string_val)
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
    elif proto.tensor_content:
        if len(proto.tensor_content) != count * d.numpy.itemsize:
            raise InvalidArgument(
                f"Input '{name}': tensor_content holds {len(proto.tensor_content)} bytes but shape {list(shape)} of "
                f"{d.display} needs {count * d.numpy.itemsize}"
            )
        return np.frombuffer(proto.tensor_content, dtype=d.numpy).reshape(shape).copy()
    elif d.enum == types_pb2.DT_HALF:
        arr = np.array(proto.half_val, dtype=np.uint16).view(np.float16)
    else:
        arr = np.array(getattr(proto, d.val_field), dtype=d.numpy)
    if arr.size == count:
        return arr.reshape(shape)
    if arr.size == 1 and count > 1:
        # TensorProto semantics: a single value fills the whole tensor.
        return np.full(shape, arr[0], dtype=arr.dtype)
    raise InvalidArgument(f"Input '{name}': {arr.size} values do not fill shape {list(shape)} ({count} elements)")


def ndarray_to_proto(
    arr: np.ndarray, dtype: DType, out: tensor_pb2.TensorProto | None = None
) -> tensor_pb2.TensorProto:
    """Encode an output tensor with the ``*_val`` field of its dtype, as TF Serving does."""
    proto = out if out is not None else tensor_pb2.TensorProto()
    proto.dtype = dtype.enum
    shape = proto.tensor_shape
    for s in arr.shape:
        shape.dim.append(tensor_shape_pb2.TensorShapeProto.Dim(size=int(s)))
    flat = arr.ravel()
    if dtype.is_string:
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode("utf-8") for v in flat)
    elif dtype.enum == types_pb2.DT_HALF:
        proto.half_val.extend(flat.astype(np.float16).view(np.uint16).tolist())
    else:
        getattr(proto, dtype.val_field).extend(flat.astype(dtype.numpy, copy=False).tolist())
    return proto
