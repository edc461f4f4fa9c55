"""The Open Inference Protocol's REST routes (``/v2/...``) on the REST port, beside TF Serving's ``/v1``.

``rest.RestTransport`` hands every ``/v2`` path here with its call record, so V2 requests get the same request id,
access-log line, metrics, body limit, timeout and ``{"error": "..."}`` bodies as ``/v1``. Paths are matched
case-sensitively, as Triton and KServe do. Triton's binary tensor extension is supported: a body whose first
``Inference-Header-Content-Length`` bytes are the JSON and the rest raw tensors (inputs with
``parameters.binary_data_size``), and binary outputs on request (``binary_data_output`` / ``binary_data``), which is
what ``tritonclient.http`` sends and asks for by default.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from model_server import rest_codec, v2_codec
from model_server.calls import Call
from model_server.errors import DeadlineExceeded, InvalidArgument, NotFound, Unavailable
from model_server.v2_codec import V2Input
from model_server.v2_plane import V2Plane, V2Request, V2Result, model_ref

HEADER_LENGTH = "Inference-Header-Content-Length"
_MODEL = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?(?:/(ready|infer))?")
JSON = "application/json"
BINARY = "application/octet-stream"


class MethodNotAllowed(InvalidArgument):
    http_override = 405


def _json(doc: Any, status: int = 200) -> web.Response:
    return web.Response(body=rest_codec.dumps(doc), status=status, content_type=JSON)


class V2Rest:
    """Answers one ``/v2`` request; errors propagate to the REST transport, which renders them."""

    def __init__(
        self,
        plane: V2Plane,
        read_body: Callable[[web.Request], Awaitable[bytes]],
        timeout_seconds: float,
        draining: Callable[[], bool],
    ) -> None:
        self._v2 = plane
        self._read_body = read_body
        self._timeout = timeout_seconds
        self._draining = draining

    async def handle(self, request: web.Request, path: str, call: Call) -> web.Response:
        if path in ("/v2", "/v2/"):
            call.method = "servermetadata"
            self._method(request, "GET")
            return _json(self._v2.server_metadata())
        if path == "/v2/health/live":
            call.method = "serverlive"
            self._method(request, "GET")
            return _json({"live": True})
        if path == "/v2/health/ready":
            call.method = "serverready"
            self._method(request, "GET")
            if self._draining():
                raise Unavailable("Not ready: the server is shutting down")
            if not self._v2.server_ready():
                raise Unavailable("Not ready: some models have no version available yet")
            return _json({"ready": True})
        m = _MODEL.fullmatch(path)
        if m is None:
            raise NotFound(f"Not found: {request.method} {path[:200]}")
        name = unquote(m.group(1))
        version = unquote(m.group(2)) if m.group(2) is not None else ""
        call.model = name
        ref = model_ref(name, version)
        call.version = ref.version
        if self._draining():
            raise Unavailable("The server is shutting down")
        verb = m.group(3)
        if verb == "infer":
            call.method = "modelinfer"
            self._method(request, "POST")
            body = await self._read_body(request)
            call.request_bytes = len(body)
            return await self._infer(ref, parse_infer_body(body, request.headers), call)
        if verb == "ready":
            call.method = "modelready"
            self._method(request, "GET")
            if not self._v2.model_ready(ref):
                raise Unavailable(f"Model {name} version {version or '(latest)'} is not ready")
            return _json({"name": name, "ready": True})
        call.method = "modelmetadata"
        self._method(request, "GET")
        signature = request.query.get("signature_name", "")
        return _json(self._v2.model_metadata(ref, signature))

    @staticmethod
    def _method(request: web.Request, allowed: str) -> None:
        if request.method != allowed:
            raise MethodNotAllowed(
                f"Method {request.method[:10]} is not allowed on {request.path[:200]}: use {allowed}"
            )

    async def _infer(self, ref: Any, parsed: tuple[V2Request, bool, dict[str, bool]], call: Call) -> web.Response:
        v2_request, binary_default, binary_outputs = parsed
        call.signature = v2_codec.string_parameter(v2_request.parameters, "signature_name", "serving_default")
        try:  # asyncio.wait_for, not asyncio.timeout: the package supports Python 3.10
            result = await asyncio.wait_for(self._v2.infer(ref, v2_request, call.request_id), self._timeout)
        except asyncio.TimeoutError:
            raise DeadlineExceeded(
                f"The request did not complete within {self._timeout * 1000:.0f} ms (--rest_api_timeout_in_ms)"
            ) from None
        call.version = result.model.version
        call.instances = result.batch_size
        return encode_infer_response(result, v2_request.id, binary_default, binary_outputs)


def _field(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str, default: Any = None) -> Any:
    value = doc.get(key, default)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidArgument(f"{what}: '{key}' is missing or not a {getattr(kind, '__name__', 'valid value')}")
    return value


def parse_infer_body(body: bytes, headers: Mapping[str, str]) -> tuple[V2Request, bool, dict[str, bool]]:
    """The inference request JSON (and binary tail); returns the request, ``binary_data_output`` and each
    requested output's ``binary_data`` choice."""
    header = headers.get(HEADER_LENGTH)
    tail = b""
    if header is not None:
        if not (header.isascii() and header.isdigit()) or int(header) > len(body):
            raise InvalidArgument(f"{HEADER_LENGTH} must be an integer no larger than the body ({len(body)} bytes)")
        body, tail = body[: int(header)], body[int(header) :]
    doc = rest_codec.parse_json(body)
    if not isinstance(doc, dict):
        raise InvalidArgument("The inference request must be a JSON object")
    request_id = doc.get("id", "")
    if not isinstance(request_id, str):
        raise InvalidArgument("'id' must be a string")
    parameters = _field(doc, "parameters", dict, "The inference request", {})
    inputs_doc = _field(doc, "inputs", list, "The inference request")
    inputs = []
    offset = 0
    for i, entry in enumerate(inputs_doc):
        if not isinstance(entry, dict):
            raise InvalidArgument(f"Input {i} must be a JSON object")
        name = _field(entry, "name", str, f"Input {i}")
        input_parameters = _field(entry, "parameters", dict, f"Input '{name}'", {})
        tensor = V2Input(
            name,
            _field(entry, "datatype", str, f"Input '{name}'"),
            _field(entry, "shape", list, f"Input '{name}'"),
        )
        size = input_parameters.get("binary_data_size")
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size < 0 or offset + size > len(tail):
                raise InvalidArgument(f"Input '{name}': binary_data_size {size!r:.30} does not fit the binary data")
            if "data" in entry:
                raise InvalidArgument(f"Input '{name}' has both 'data' and binary_data_size")
            tensor.raw = tail[offset : offset + size]
            offset += size
        elif "data" not in entry:
            raise InvalidArgument(f"Input '{name}' has no 'data'")
        else:
            tensor.values = entry["data"]
        inputs.append(tensor)
    if offset != len(tail):
        raise InvalidArgument(f"{len(tail) - offset} bytes of binary data are not claimed by any input")
    binary_default = v2_codec.bool_parameter(parameters, "binary_data_output")
    outputs: dict[str, bool] = {}
    for i, entry in enumerate(_field(doc, "outputs", list, "The inference request", [])):
        if not isinstance(entry, dict):
            raise InvalidArgument(f"Requested output {i} must be a JSON object")
        name = _field(entry, "name", str, f"Requested output {i}")
        out_parameters = _field(entry, "parameters", dict, f"Requested output '{name}'", {})
        if name in outputs:
            raise InvalidArgument(f"Output '{name}' is requested more than once")
        outputs[name] = v2_codec.bool_parameter(out_parameters, "binary_data") or (
            binary_default and "binary_data" not in out_parameters
        )
    return V2Request(request_id, parameters, inputs, list(outputs)), binary_default, outputs


def encode_infer_response(
    result: V2Result, request_id: str, binary_default: bool, binary_outputs: Mapping[str, bool]
) -> web.Response:
    doc: dict[str, Any] = {"model_name": result.model.name, "model_version": str(result.model.version)}
    if request_id:
        doc["id"] = request_id
    tensors = []
    tail = []
    for out in result.outputs:
        tensor: dict[str, Any] = {"name": out.name, "datatype": out.datatype.name, "shape": list(out.array.shape)}
        if binary_outputs.get(out.name, binary_default):
            raw = v2_codec.to_raw(out.array, out.datatype)
            tensor["parameters"] = {"binary_data_size": len(raw)}
            tail.append(raw)
        else:
            tensor["data"] = v2_codec.to_json_data(out.array, out.datatype, out.name)
        tensors.append(tensor)
    doc["outputs"] = tensors
    head = rest_codec.dumps(doc)
    if not tail:
        return web.Response(body=head, content_type=JSON)
    response = web.Response(body=head + b"".join(tail), content_type=BINARY)
    response.headers[HEADER_LENGTH] = str(len(head))
    return response
