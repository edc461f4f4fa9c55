"""``--enable_grpc_healthcheck_service``: ``grpc.health.v1.Health`` on the gRPC port, as TF Serving reports it.

TF Serving enables gRPC's default health service, whose overall status ``""`` is SERVING once the server runs, and
sets ``ModelService`` and ``PredictionService`` (those short names, not the full ``tensorflow.serving.`` ones) to
SERVING; any other name is NOT_FOUND for Check and SERVICE_UNKNOWN for Watch. It reports no per-model names. On
shutdown every status turns NOT_SERVING, so load balancers stop sending traffic while in-flight requests finish;
open Watch streams get that NOT_SERVING and then end, so they do not hold the shutdown for its whole grace period.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVICE_NAMES = ("", "ModelService", "PredictionService")  # TF Serving's server.cc
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class HealthService(health_pb2_grpc.HealthServicer):
    """Check and Watch over a fixed set of service names; :meth:`enter_shutdown` turns them all NOT_SERVING."""

    def __init__(self) -> None:
        self._status: dict[str, int] = dict.fromkeys(SERVICE_NAMES, SERVING)
        self._watchers: set[asyncio.Queue[None]] = set()
        self.shutting_down = False

    def status(self, service: str) -> int | None:
        return self._status.get(service)

    def enter_shutdown(self) -> None:
        """Every name NOT_SERVING, for good (later changes are ignored, as in gRPC's health service)."""
        if self.shutting_down:
            return
        self.shutting_down = True
        for service in self._status:
            self._status[service] = NOT_SERVING
        for queue in self._watchers:
            queue.put_nowait(None)

    async def Check(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        status = self._status.get(request.service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service[:200]!r}")
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:  # noqa: N802
        queue: asyncio.Queue[None] = asyncio.Queue()
        self._watchers.add(queue)
        try:
            last = None
            while True:
                status = self._status.get(request.service, SERVICE_UNKNOWN)
                if status != last:
                    yield health_pb2.HealthCheckResponse(status=status)
                    last = status
                    continue  # read again: the status may have changed while gRPC was sending that one
                if self.shutting_down:
                    return
                await queue.get()
        finally:
            self._watchers.discard(queue)


def add_health_service(server: grpc.aio.Server, service: HealthService) -> None:
    health_pb2_grpc.add_HealthServicer_to_server(service, server)
