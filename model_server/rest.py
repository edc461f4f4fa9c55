"""The REST transport (aiohttp): TF Serving's ``/v1`` routes plus health and metrics, and nothing else.

One catch-all route does its own matching with TF Serving's regular expressions (case-insensitive, URL-decoded
model names and labels, ``Malformed request`` for any other ``/v1`` call). Every response is JSON — ``/metrics`` is
the one exception, it speaks Prometheus' text format — every error body is exactly ``{"error": "..."}``, and every
request leaves one access-log line and one set of metric samples.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any
from urllib.parse import unquote

import numpy as np
from aiohttp import web

from model_server import example_apis, example_codec, rest_codec
from model_server.calls import REQUEST_ID_HEADER, Call, CallRecorder
from model_server.dataplane import DataPlane, ModelRef
from model_server.errors import (
    DeadlineExceeded,
    InvalidArgument,
    NotFound,
    PayloadTooLarge,
    Unavailable,
    to_serving_error,
)
from model_server.hints import EXPLAIN_SIGNATURE
from model_server.logs import AccessLog
from model_server.metrics import Metrics
from model_server.model import SignatureInfo
from model_server.v2_plane import V2Plane
from model_server.v2_rest import V2Rest
from stacks.compat import message_to_dict

log = logging.getLogger(__name__)

_PREDICT = re.compile(  # explain: KServe V1's verb, not TF Serving's
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict|explain)",
    re.IGNORECASE,
)
_STATUS = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?", re.IGNORECASE
)
_MAX_VERSION = 2**63 - 1
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATHS = ("/metrics", "/monitoring/prometheus/metrics")
JSON = "application/json"


def _json_response(doc: Any, status: int = 200) -> web.Response:
    return web.Response(body=rest_codec.dumps(doc), status=status, content_type=JSON)


def _parse_version(text: str | None) -> int | None:
    if text is None:
        return None
    version = int(text)
    if version > _MAX_VERSION:
        raise InvalidArgument(f"Failed to convert version: {text[:30]} to numeric.")
    return version


class RestTransport:
    """TF Serving's REST API on one aiohttp application."""

    def __init__(
        self, plane: DataPlane, metrics: Metrics, access_log: AccessLog, max_request_bytes: int, timeout_seconds: float
    ) -> None:
        self._plane = plane
        self._metrics = metrics
        self._calls = CallRecorder("rest", metrics, access_log, plane.metric_model_label)
        self._max_bytes = max_request_bytes
        self._timeout = timeout_seconds
        self._v2 = V2Rest(V2Plane(plane), self._read_body, timeout_seconds, lambda: self.draining)
        self._inflight = metrics.inflight.labels("rest")
        self.active = 0  # requests being handled, for graceful shutdown
        self.metrics_paths: tuple[str, ...] = METRICS_PATHS  # the server sets it from --monitoring_config_file
        self.draining = False

    def build_app(self) -> web.Application:
        # aiohttp enforces client_max_size when the body is read; we read it ourselves to answer with JSON.
        app = web.Application(client_max_size=self._max_bytes, handler_args={"max_field_size": 16384})
        app.router.add_route("*", "/{tail:(?s:.*)}", self.handle)  # (?s): paths may hold a decoded newline
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        start = time.perf_counter()
        call = self._calls.new_call(request.headers.get(REQUEST_ID_HEADER))
        self._inflight.inc()
        self.active += 1
        try:
            response = await self._route(request, call)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a JSON error, never a traceback
            error, unexpected = to_serving_error(exc, call.request_id)
            if unexpected:
                log.error("request %s: unexpected error", call.request_id, exc_info=exc)
            call.error = error
            response = _json_response({"error": error.message}, error.http_status)
        finally:
            self._inflight.dec()
            self.active -= 1
        response.headers[REQUEST_ID_HEADER] = call.request_id
        body = getattr(response, "body", None)
        self._calls.record(
            call,
            time.perf_counter() - start,
            path=request.rel_url.raw_path,
            status=response.status,
            request_bytes=call.request_bytes or request.content_length or 0,
            response_bytes=len(body) if isinstance(body, bytes | bytearray) else None,
            http_method=request.method,
        )
        return response

    async def _route(self, request: web.Request, call: Call) -> web.StreamResponse:
        path = request.rel_url.raw_path
        lowered = path.lower()
        if lowered.startswith("/v1/") or lowered == "/v1":
            if self.draining:
                raise Unavailable("The server is shutting down")
            return await self._v1(request, path, call)
        if path.startswith("/v2/") or path == "/v2":  # the Open Inference Protocol (KServe V2): model_server.v2_rest
            return await self._v2.handle(request, path, call)
        if path == HEALTH_PATH:
            call.method = "health"
            return _json_response({"status": "alive"})
        if path == READY_PATH:
            call.method = "ready"
            return self._ready()
        if path in self.metrics_paths:
            call.method = "metrics"
            body, content_type = self._metrics.render()
            response = web.Response(body=body)
            response.headers["Content-Type"] = content_type
            return response
        raise NotFound(f"Not found: {request.method} {path[:200]}")

    def _ready(self) -> web.Response:
        ready, models = self._plane.ready()
        if self.draining:
            return _json_response({"error": "Not ready: the server is shutting down"}, 503)
        if not ready:
            waiting = sorted(name for name, versions in models.items() if not versions)
            return _json_response({"error": f"Not ready: no version available yet for {', '.join(waiting)}"}, 503)
        return _json_response({"status": "ready", "models": {n: [str(v) for v in vs] for n, vs in models.items()}})

    async def _v1(self, request: web.Request, path: str, call: Call) -> web.Response:
        m = _PREDICT.fullmatch(path)
        if request.method == "POST" and m:
            ref = self._ref(m, call)
            verb = m.group(4).lower()
            call.method = verb
            body = await self._read_body(request)
            call.request_bytes = len(body)
            if verb == "explain":
                return await self._predict(ref, body, call, explain=True)
            if verb != "predict":
                return await self._classify_or_regress(ref, verb, body, call)
            return await self._predict(ref, body, call)
        m = _STATUS.fullmatch(path)
        if request.method == "GET" and m:
            if m.group(1) is None:
                raise InvalidArgument("Missing model name in request.")
            ref = self._ref(m, call)
            if m.group(4) is not None:
                call.method = "metadata"
                return self._metadata(ref, call)
            call.method = "status"
            return self._status(ref)
        raise InvalidArgument(f"Malformed request: {request.method} {path[:200]}")

    @staticmethod
    def _ref(m: re.Match[str], call: Call) -> ModelRef:
        name = unquote(m.group(1))
        call.model = name
        version = _parse_version(m.group(2))
        label = unquote(m.group(3)) if m.group(3) is not None else None
        call.version = version
        return ModelRef(name, version, label)

    async def _read_body(self, request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > self._max_bytes:
            raise PayloadTooLarge(self._too_large(request.content_length))
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise PayloadTooLarge(self._too_large(None)) from None

    def _too_large(self, size: int | None) -> str:
        got = f"{size} bytes" if size else "more bytes"
        return f"Request body of {got} exceeds the limit of {self._max_bytes} bytes (--max_request_bytes)"

    async def _predict(self, ref: ModelRef, body: bytes, call: Call, explain: bool = False) -> web.Response:
        parsed = rest_codec.parse_predict_body(body)
        if explain:
            parsed.signature_name = self._explain_signature(ref, parsed.signature_name)
        call.signature = parsed.signature_name

        def decode(sig: SignatureInfo) -> dict[str, np.ndarray]:
            if parsed.row_format:
                return rest_codec.decode_instances(parsed.payload, sig)
            return rest_codec.decode_inputs(parsed.payload, sig)

        try:  # asyncio.wait_for, not asyncio.timeout: the package supports Python 3.10
            result = await asyncio.wait_for(
                self._plane.predict(ref, parsed.signature_name, decode, call.request_id), self._timeout
            )
        except asyncio.TimeoutError:
            raise DeadlineExceeded(
                f"The request did not complete within {self._timeout * 1000:.0f} ms (--rest_api_timeout_in_ms)"
            ) from None
        call.version = result.model.version
        call.instances = result.batch_size
        doc = rest_codec.encode_predictions(result.outputs, result.signature, parsed.row_format)
        return _json_response(doc)

    def _explain_signature(self, ref: ModelRef, requested: str) -> str:
        """`:explain` (KServe V1's verb, a `:predict` body) runs the model's `explain` signature and no other."""
        if requested not in ("serving_default", EXPLAIN_SIGNATURE):  # serving_default: the body named none
            raise InvalidArgument(
                f":explain runs the model's '{EXPLAIN_SIGNATURE}' signature, not '{requested[:100]}': leave "
                f"signature_name out, or call :predict with it"
            )
        self._plane.explainable_model(ref)
        return EXPLAIN_SIGNATURE

    async def _classify_or_regress(self, ref: ModelRef, verb: str, body: bytes, call: Call) -> web.Response:
        """TF Serving parses the whole body before it looks the model up (json_tensor.cc, then the servable)."""
        parsed = example_codec.parse_examples_body(body)
        call.signature = parsed.signature_name or "serving_default"
        method = example_apis.CLASSIFY_METHOD_NAME if verb == "classify" else example_apis.REGRESS_METHOD_NAME
        task = example_apis.InferenceTask(parsed.signature_name, method)
        try:
            result = await asyncio.wait_for(
                self._plane.classify_or_regress(ref, task, lambda: parsed.examples, call.request_id), self._timeout
            )
        except asyncio.TimeoutError:
            raise DeadlineExceeded(
                f"The request did not complete within {self._timeout * 1000:.0f} ms (--rest_api_timeout_in_ms)"
            ) from None
        call.version = result.model.version
        call.instances = result.num_examples
        return web.Response(body=example_codec.results_json(result), content_type=JSON)

    def _status(self, ref: ModelRef) -> web.Response:
        statuses = self._plane.model_status(ref)
        return _json_response(
            {
                "model_version_status": [
                    {
                        "version": str(s.version),
                        "state": s.state.name,
                        "status": {"error_code": s.error_code.name, "error_message": s.error_message},
                    }
                    for s in statuses
                ]
            }
        )

    def _metadata(self, ref: ModelRef, call: Call) -> web.Response:
        model = self._plane.model_metadata(ref)
        call.version = model.version
        signature_def = message_to_dict(model.signature_def_map)
        return _json_response(
            {
                "model_spec": {"name": model.name, "signature_name": "", "version": str(model.version)},
                "metadata": {"signature_def": signature_def},
            }
        )
