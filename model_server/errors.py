"""Typed serving errors and the ONE place that maps them to HTTP statuses and gRPC codes.

Every layer raises :class:`ServingError` (or lets an unexpected exception escape); transports call
:func:`to_serving_error` and read :attr:`ServingError.http_status` / :attr:`ServingError.grpc_code`, so a given
failure looks the same over REST and gRPC and the same as TensorFlow Serving reports it.
"""

from __future__ import annotations

import enum
import re
from typing import Any


class Code(enum.IntEnum):
    """Canonical status codes (``tensorflow.error.Code`` / ``grpc.StatusCode`` share these numbers)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


# TF Serving's http_rest_api_handler: canonical code -> HTTP status; anything not listed is 500.
_HTTP_STATUS = {
    Code.OK: 200,
    Code.INVALID_ARGUMENT: 400,
    Code.FAILED_PRECONDITION: 400,
    Code.OUT_OF_RANGE: 400,
    Code.UNAUTHENTICATED: 401,
    Code.PERMISSION_DENIED: 403,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.ABORTED: 409,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.CANCELLED: 499,
    Code.UNIMPLEMENTED: 501,
    Code.UNAVAILABLE: 503,
    Code.DEADLINE_EXCEEDED: 504,
}


def http_status_for(code: Code) -> int:
    return _HTTP_STATUS.get(code, 500)


def grpc_code_for(code: Code) -> Any:
    """The ``grpc.StatusCode`` member; imported lazily so REST-only users never need grpc at import time."""
    import grpc

    return grpc.StatusCode[code.name]


class ServingError(Exception):
    """An error whose message is safe to show to the client."""

    code: Code = Code.UNKNOWN
    http_override: int | None = None

    def __init__(self, message: str, code: Code | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    @property
    def http_status(self) -> int:
        return self.http_override if self.http_override is not None else http_status_for(self.code)

    @property
    def grpc_code(self) -> Any:
        return grpc_code_for(self.code)

    def for_grpc(self) -> ServingError:
        """This error as gRPC reports it: the same code and text as REST unless TF Serving differs there."""
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.name}: {self.message!r})"


class InvalidArgument(ServingError):
    code = Code.INVALID_ARGUMENT


class NotFound(ServingError):
    code = Code.NOT_FOUND


class FailedPrecondition(ServingError):
    code = Code.FAILED_PRECONDITION


class ResourceExhausted(ServingError):
    code = Code.RESOURCE_EXHAUSTED


class Unimplemented(ServingError):
    code = Code.UNIMPLEMENTED


class Unavailable(ServingError):
    code = Code.UNAVAILABLE


class DeadlineExceeded(ServingError):
    code = Code.DEADLINE_EXCEEDED


class Internal(ServingError):
    code = Code.INTERNAL


class SignatureNotFound(InvalidArgument):
    """An unknown signature: TF Serving answers REST with 400 and ``Serving signature name: "<s>" not found in
    signature def``, but gRPC with FAILED_PRECONDITION and ``Serving signature key "<s>" not found.``"""

    def __init__(self, signature_name: str):
        super().__init__(f'Serving signature name: "{signature_name}" not found in signature def')
        self.signature_name = signature_name

    def for_grpc(self) -> ServingError:
        return FailedPrecondition(f'Serving signature key "{self.signature_name}" not found.')


class PayloadTooLarge(InvalidArgument):
    """A body over ``--max_request_bytes``: INVALID_ARGUMENT over gRPC, but 413 over HTTP so proxies and clients
    can tell "too big" from "malformed" without parsing the message."""

    http_override = 413


class UnsupportedMediaType(InvalidArgument):
    http_override = 415


def to_serving_error(exc: BaseException, request_id: str) -> tuple[ServingError, bool]:
    """Turn any exception into a client-safe :class:`ServingError`.

    Returns ``(error, unexpected)``; when ``unexpected`` is true the caller must log the original exception with the
    request id, because the client only sees a generic message (never a stack trace or internal detail).
    """
    if isinstance(exc, ServingError):
        return exc, False
    code = _tf_error_code(exc)
    if code is not None and code in (Code.INVALID_ARGUMENT, Code.OUT_OF_RANGE, Code.FAILED_PRECONDITION):
        # The model rejected this request's data (e.g. an unparsable tf.Example): the client can fix it.
        return ServingError(_tf_message(getattr(exc, "message", str(exc))), code), False
    return Internal(f"Internal error; request id {request_id}"), True


def _tf_error_code(exc: BaseException) -> Code | None:
    """``tf.errors.OpError`` carries a canonical code; look at it without importing TensorFlow here."""
    error_code = getattr(exc, "error_code", None)
    if type(exc).__module__.startswith("tensorflow") and isinstance(error_code, int):
        try:
            return Code(error_code)
        except ValueError:
            return None
    return None


_TF_NOISE = ("Graph execution error", "Detected at node", "<stack traces", "[[", "File ", "Traceback")


def _tf_message(message: str, limit: int = 500) -> str:
    """The one meaningful line of a TF op error (its text wraps it in graph-execution and node-location noise)."""
    for raw in message.splitlines():
        line = raw.strip()
        if not line or line.startswith(_TF_NOISE):
            continue
        line = re.sub(r"\s*\[Op:[^\]]*\]\s*$", "", line)
        line = line.split(", value: '", 1)[0]  # TF quotes the raw (possibly binary, possibly personal) input
        return line if len(line) <= limit else line[:limit] + "..."
    return "Invalid argument"
