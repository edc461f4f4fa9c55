"""The Open Inference Protocol's gRPC messages, built at import time from ``grpc_predict_v2.proto`` beside this file.

Generated ``_pb2`` modules are tied to the protobuf release that generated them (a 6.x module refuses to load under
4.25, a 4.x one warns or breaks under 6.x), and the two supported stacks ship protobuf 4.25 and 6.33. So nothing is
generated: a small reader turns the .proto (the subset it uses: messages, nested messages, ``repeated``, ``map``,
``oneof``, one service) into a ``FileDescriptorProto``, and the message classes come from a private descriptor pool,
which also keeps them apart from the same ``inference.*`` names that ``tritonclient`` registers in the default pool.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PROTO_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grpc_predict_v2.proto")
SERVICE = "inference.GRPCInferenceService"

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "double": _F.TYPE_DOUBLE,
    "float": _F.TYPE_FLOAT,
    "int64": _F.TYPE_INT64,
    "uint64": _F.TYPE_UINT64,
    "int32": _F.TYPE_INT32,
    "uint32": _F.TYPE_UINT32,
    "bool": _F.TYPE_BOOL,
    "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
}
_TOKEN = re.compile(r'\s+|//[^\n]*|/\*.*?\*/|("[^"]*"|[A-Za-z_][\w.]*|\d+|[{}()<>;=,])', re.DOTALL)


class ProtoSyntaxError(ValueError):
    """The .proto uses something this reader does not know (it only reads the file shipped beside it)."""


@dataclasses.dataclass(frozen=True)
class Rpc:
    name: str
    request: str  # full message names, e.g. "inference.ModelInferRequest"
    response: str


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ProtoSyntaxError(f"unexpected character {text[pos]!r} at offset {pos}")
        if m.group(1):
            out.append(m.group(1))
        pos = m.end()
    return out


class _Reader:
    def __init__(self, tokens: list[str]) -> None:
        self._t = tokens
        self._i = 0
        self.package = ""
        self.rpcs: list[Rpc] = []
        self._pending: list[tuple[Any, str, list[str]]] = []  # (field, type name as written, enclosing scope)
        self._known: set[str] = set()

    def _next(self, expected: str | None = None) -> str:
        if self._i >= len(self._t):
            raise ProtoSyntaxError("unexpected end of file")
        token = self._t[self._i]
        self._i += 1
        if expected is not None and token != expected:
            raise ProtoSyntaxError(f"expected {expected!r}, got {token!r}")
        return token

    def _peek(self) -> str | None:
        return self._t[self._i] if self._i < len(self._t) else None

    def read(self, name: str) -> descriptor_pb2.FileDescriptorProto:
        fdp = descriptor_pb2.FileDescriptorProto(name=name, syntax="proto3")
        services: list[tuple[str, list[tuple[str, str, str]]]] = []
        while self._peek() is not None:
            word = self._next()
            if word == "syntax":
                self._next("=")
                if self._next() != '"proto3"':
                    raise ProtoSyntaxError("only proto3 is supported")
                self._next(";")
            elif word == "package":
                self.package = fdp.package = self._next()
                self._next(";")
            elif word == "message":
                self._message(fdp.message_type.add(), [])
            elif word == "service":
                services.append(self._service())
            else:
                raise ProtoSyntaxError(f"unsupported top-level statement {word!r}")
        for field, type_name, scope in self._pending:
            field.type_name = self._resolve(type_name, scope)
        for service_name, methods in services:
            service = fdp.service.add(name=service_name)
            for rpc, request, response in methods:
                req, resp = self._resolve(request, []), self._resolve(response, [])
                service.method.add(name=rpc, input_type=req, output_type=resp)
                self.rpcs.append(Rpc(rpc, req.lstrip("."), resp.lstrip(".")))
        return fdp

    def _message(self, msg: descriptor_pb2.DescriptorProto, scope: list[str]) -> None:
        msg.name = self._next()
        inner = [*scope, msg.name]
        self._known.add(".".join(inner))
        self._next("{")
        while (token := self._next()) != "}":
            if token == "message":
                self._message(msg.nested_type.add(), inner)
            elif token == "oneof":
                index = len(msg.oneof_decl)
                msg.oneof_decl.add(name=self._next())
                self._next("{")
                while self._peek() != "}":
                    self._field(msg, inner, self._next(), _F.LABEL_OPTIONAL).oneof_index = index
                self._next("}")
            elif token == "map":
                self._map(msg, inner)
            elif token == "repeated":
                self._field(msg, inner, self._next(), _F.LABEL_REPEATED)
            elif token != ";":
                self._field(msg, inner, token, _F.LABEL_OPTIONAL)

    def _field(self, msg: descriptor_pb2.DescriptorProto, scope: list[str], type_name: str, label: int) -> Any:
        name = self._next()
        self._next("=")
        field = msg.field.add(name=name, number=int(self._next()), label=label, json_name=_json_name(name))
        self._next(";")
        self._set_type(field, type_name, scope)
        return field

    def _map(self, msg: descriptor_pb2.DescriptorProto, scope: list[str]) -> None:
        self._next("<")
        key_type = self._next()
        self._next(",")
        value_type = self._next()
        self._next(">")
        name = self._next()
        entry = msg.nested_type.add(name="".join(p.capitalize() for p in name.split("_")) + "Entry")
        entry.options.map_entry = True
        self._known.add(".".join([*scope, entry.name]))
        key = entry.field.add(name="key", number=1, label=_F.LABEL_OPTIONAL, json_name="key")
        value = entry.field.add(name="value", number=2, label=_F.LABEL_OPTIONAL, json_name="value")
        self._set_type(key, key_type, scope)
        self._set_type(value, value_type, scope)
        self._next("=")
        field = msg.field.add(name=name, number=int(self._next()), label=_F.LABEL_REPEATED, json_name=_json_name(name))
        self._next(";")
        field.type = _F.TYPE_MESSAGE
        field.type_name = f".{self.package}." + ".".join([*scope, entry.name])

    def _set_type(self, field: Any, type_name: str, scope: list[str]) -> None:
        if type_name in _SCALARS:
            field.type = _SCALARS[type_name]
        else:
            field.type = _F.TYPE_MESSAGE  # this file has no enums
            self._pending.append((field, type_name, scope))

    def _service(self) -> tuple[str, list[tuple[str, str, str]]]:
        name = self._next()
        methods = []
        self._next("{")
        while (token := self._next()) != "}":
            if token != "rpc":
                raise ProtoSyntaxError(f"unsupported statement {token!r} in service {name}")
            rpc = self._next()
            self._next("(")
            request = self._next()
            self._next(")")
            self._next("returns")
            self._next("(")
            response = self._next()
            self._next(")")
            if self._next() == "{":
                self._next("}")
            methods.append((rpc, request, response))
        return name, methods

    def _resolve(self, type_name: str, scope: list[str]) -> str:
        """Protobuf's scoping: the innermost enclosing message that has the name wins, then the package."""
        for depth in range(len(scope), -1, -1):
            candidate = ".".join([*scope[:depth], type_name])
            if candidate in self._known:
                return f".{self.package}.{candidate}"
        raise ProtoSyntaxError(f"unknown message type {type_name!r}")


def _json_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


def _build() -> tuple[dict[str, Any], list[Rpc]]:
    with open(PROTO_FILE, encoding="utf-8") as f:
        reader = _Reader(_tokens(f.read()))
    fdp = reader.read("model_server/grpc_predict_v2.proto")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    classes = {
        f"{reader.package}.{m.name}": message_factory.GetMessageClass(
            pool.FindMessageTypeByName(f"{reader.package}.{m.name}")
        )
        for m in fdp.message_type
    }
    return classes, reader.rpcs


MESSAGES, RPCS = _build()


def message_class(name: str) -> Any:
    """A message class by its short name (``"ModelInferRequest"``); nested types are attributes of their parent."""
    return MESSAGES[f"inference.{name}"]


def file_descriptor() -> Any:
    """The built file's descriptor (for reflection and for tests comparing it with Triton's)."""
    return message_class("ModelInferRequest").DESCRIPTOR.file
