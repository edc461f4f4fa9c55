"""What one request did, recorded the same way for REST and gRPC: its request id, metric samples, access-log line.

Both transports fill in a :class:`Call` as they learn the model, version, signature and outcome, and hand it to
:meth:`CallRecorder.record` once the answer is ready, so the two protocols cannot drift apart in which request ids
they accept, which calls they count, or what the access log says.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable
from typing import Any

from model_server.errors import ServingError
from model_server.logs import AccessLog, utc_now
from model_server.metrics import Metrics

# A client's request id is echoed and logged only when it is this safe: no spaces, quotes, separators or control
# characters a log parser or a header could trip on. Anything else gets a fresh id.
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
REQUEST_ID_HEADER = "X-Request-Id"  # gRPC: the same name, lower-cased, in the call's metadata


def request_id(client_value: object) -> str:
    """The client's request id when it matches :data:`REQUEST_ID`, else a new random 16-hex-digit one."""
    if isinstance(client_value, str) and REQUEST_ID.fullmatch(client_value):
        return client_value
    return uuid.uuid4().hex[:16]


@dataclasses.dataclass(slots=True)
class Call:
    """One request, filled in by the transport as the handler learns it."""

    protocol: str
    request_id: str
    method: str = "other"  # predict, status, metadata, ...; "other" (unrouted REST paths) is not counted
    model: str | None = None
    version: int | None = None
    signature: str | None = None
    instances: int | None = None
    request_bytes: int = 0  # REST: the body's length once read
    error: ServingError | None = None


class CallRecorder:
    """Counts a finished call in the metrics and writes its access-log line (no bodies, no error messages)."""

    def __init__(
        self, protocol: str, metrics: Metrics, access_log: AccessLog, model_label: Callable[[str | None], str]
    ) -> None:
        self.protocol = protocol
        self._metrics = metrics
        self._access_log = access_log
        self._model_label = model_label  # DataPlane.metric_model_label: configured names only

    def new_call(self, client_request_id: object) -> Call:
        return Call(self.protocol, request_id(client_request_id))

    def record(
        self,
        call: Call,
        seconds: float,
        *,
        path: str,
        status: int,
        request_bytes: int,
        response_bytes: int | None,
        http_method: str | None = None,
    ) -> None:
        """``status``: the HTTP status (REST) or the canonical code's number (gRPC)."""
        code = call.error.code.name if call.error is not None else "OK"
        if call.method != "other" or call.error is not None:
            model = self._model_label(call.model)
            self._metrics.requests.labels(self.protocol, model, call.method, code).inc()
            self._metrics.request_latency.labels(self.protocol, model, call.method).observe(seconds)
            if call.error is not None:
                self._metrics.request_errors.labels(self.protocol, model, call.method, code).inc()
        if not self._access_log.enabled:
            return
        entry: dict[str, Any] = {"ts": utc_now(), "request_id": call.request_id, "protocol": self.protocol}
        if http_method is not None:
            entry["http_method"] = http_method
        entry.update(
            {
                "path": path[:200],
                "method": call.method,
                "model": call.model,
                "version": call.version,
                "signature": call.signature,
                "status": status,
                "code": code,
                "instances": call.instances,
                "request_bytes": request_bytes,
                "response_bytes": response_bytes,
                "duration_ms": round(seconds * 1000, 3),
            }
        )
        self._access_log.write(entry)
