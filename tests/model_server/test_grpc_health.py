"""``--enable_grpc_healthcheck_service``: grpc.health.v1.Health with TF Serving's service names, NOT_SERVING on
shutdown; Check and Watch."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from model_server.config import parse_args
from model_server.health import NOT_SERVING, SERVICE_UNKNOWN, SERVING, HealthService, add_health_service
from model_server.process import ServerProcess
from tests.model_server.ms_helpers import MODEL, copy_version


def _request(service: str) -> health_pb2.HealthCheckRequest:
    return health_pb2.HealthCheckRequest(service=service)


def test_the_flag_reaches_server_options(tmp_path: Path) -> None:
    assert parse_args(
        [f"--model_base_path={tmp_path}", "--enable_grpc_healthcheck_service"]
    ).enable_grpc_healthcheck_service
    o = parse_args([f"--model_base_path={tmp_path}"])
    assert not o.enable_grpc_healthcheck_service and "enable_grpc_healthcheck_service" not in o.not_applied_flags


def test_check_and_watch_in_process() -> None:
    """The service on its own aio server: statuses, unknown names, and the switch to NOT_SERVING at shutdown."""

    async def scenario() -> None:
        service = HealthService()
        server = grpc.aio.server()
        add_health_service(server, service)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                for name in ("", "ModelService", "PredictionService"):
                    assert (await stub.Check(_request(name), timeout=5)).status == SERVING
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await stub.Check(_request("tensorflow.serving.PredictionService"), timeout=5)
                assert info.value.code() == grpc.StatusCode.NOT_FOUND
                watch = stub.Watch(_request(""), timeout=5)
                unknown = stub.Watch(_request("sentiment"), timeout=5)
                assert (await watch.read()).status == SERVING
                assert (await unknown.read()).status == SERVICE_UNKNOWN
                service.enter_shutdown()
                assert (await watch.read()).status == NOT_SERVING
                assert await watch.read() is grpc.aio.EOF  # the stream ends: it does not hold the shutdown
                assert await unknown.read() is grpc.aio.EOF  # unknown stays unknown: nothing new to send
                assert (await stub.Check(_request("PredictionService"), timeout=5)).status == NOT_SERVING
                service.enter_shutdown()  # twice is harmless
                late = stub.Watch(_request("ModelService"), timeout=5)
                assert [r.status async for r in late] == [NOT_SERVING]
        finally:
            await server.stop(0)

    asyncio.run(scenario())


def test_a_shutdown_while_a_status_is_being_sent_is_still_sent() -> None:
    """The race CI met: SIGTERM arrived while gRPC was still sending a Watch stream's first status (the generator
    suspended at its yield). The stream must still send NOT_SERVING before it ends, not end with the old status."""

    async def scenario() -> None:
        service = HealthService()
        watch = service.Watch(_request("ModelService"), None)  # type: ignore[arg-type]  # Watch never uses it
        assert (await anext(watch)).status == SERVING  # suspended at the yield, as while gRPC sends the message
        service.enter_shutdown()
        assert (await anext(watch)).status == NOT_SERVING
        with pytest.raises(StopAsyncIteration):
            await anext(watch)

    asyncio.run(scenario())


def test_without_the_flag_there_is_no_health_service(shared_server: ServerProcess) -> None:
    with grpc.insecure_channel(shared_server.grpc_target) as channel, pytest.raises(grpc.RpcError) as info:
        health_pb2_grpc.HealthStub(channel).Check(_request(""), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_a_server_with_the_flag_reports_serving_then_not_serving_on_sigterm(
    spawn: Callable[..., ServerProcess], toy_models: dict[str, str], tmp_path: Path
) -> None:
    base = tmp_path / "models" / MODEL
    copy_version(toy_models["v1"], base, 1)
    server = spawn(
        model_name=MODEL, model_base_path=str(base), extra_args=["--enable_grpc_healthcheck_service"], rest=False
    )
    server.wait_for_model(MODEL, timeout=180)
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        assert stub.Check(_request(""), timeout=10).status == SERVING
        assert stub.Check(_request("PredictionService"), timeout=10).status == SERVING
        watch = stub.Watch(_request("ModelService"), timeout=60)
        assert next(watch).status == SERVING
        server.process.send_signal(signal.SIGTERM)
        assert [r.status for r in watch] == [NOT_SERVING]  # then the stream ends and the server exits
    assert server.process.wait(60) == 0
