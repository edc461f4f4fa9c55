"""The server: wires repository, runners, data plane and transports, owns the ports and the shutdown sequence.

Shutdown (SIGTERM or SIGINT): readiness turns 503 and new requests are refused with UNAVAILABLE, the listening
sockets close, queued batches run at once, requests already in flight get up to ``--shutdown_grace_seconds`` to
finish, then the process exits 0. A second signal skips the rest of the grace period.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import time
from collections.abc import Sequence

import grpc
from aiohttp import web
from aiohttp.typedefs import Handler

from model_server.batching import BatchScheduler, DirectRunner, read_per_model_batching
from model_server.config import EPHEMERAL_PORT, ServerOptions
from model_server.dataplane import DataPlane, PlaneOptions
from model_server.grpc_service import GrpcTransport, add_services
from model_server.health import HealthService, add_health_service
from model_server.logs import AccessLog, RequestLog
from model_server.metrics import Metrics
from model_server.model import ServableModel, batch_sizes_for_warmup, import_op_libraries
from model_server.model_config import ConfigError, ModelConfig, load_model_config_file
from model_server.onnx_engine import OnnxOptions
from model_server.repository import ModelRepository
from model_server.rest import RestTransport
from model_server.tf_serving_flags import not_applied_warning
from model_server.tls import grpc_server_credentials, server_ssl_context

log = logging.getLogger(__name__)


class ModelServer:
    def __init__(self, options: ServerOptions):
        self.options = options
        self.metrics = Metrics()
        self.access_log = AccessLog(options.access_log_path)
        self.request_log = (
            RequestLog(options.request_log_path, options.request_log_sample_rate, self.metrics)
            if options.request_log_path
            else None
        )
        self._warmup_sizes = batch_sizes_for_warmup(options.enable_batching, options.batching.allowed_batch_sizes)
        self.repository = ModelRepository(
            options.models, self._load_model, self.metrics, options.file_system_poll_wait_seconds, options.load
        )
        self.direct = DirectRunner(options.request_threads, self.metrics)
        self.batcher = BatchScheduler(options.batching, self.metrics) if options.enable_batching else None
        if self.batcher is not None and options.enable_per_model_batching_parameters:
            self.batcher.enable_per_model_parameters(self.direct)
        self.plane = DataPlane(
            self.repository,
            self.direct,
            self.batcher,
            PlaneOptions(
                options.max_instances_per_request,
                options.allow_empty_text,
                options.enable_signature_method_name_check,
            ),
            self.request_log,
        )
        self.rest = RestTransport(
            self.plane, self.metrics, self.access_log, options.max_request_bytes, options.rest_api_timeout_in_ms / 1000
        )
        self.rest.metrics_paths = metrics_paths(options.prometheus_path)
        self.grpc = GrpcTransport(self.plane, self.metrics, self.access_log, self.reload_config)
        self.health = HealthService() if options.enable_grpc_healthcheck_service else None
        self.grpc_port = 0
        self.rest_port = 0
        self._grpc_server: grpc.aio.Server | None = None
        self._rest_runner: web.AppRunner | None = None
        self._stop = asyncio.Event()
        self._force = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    def _load_model(self, name: str, version: int, path: str) -> ServableModel:
        per_model = self.batcher is not None and self.options.enable_per_model_batching_parameters
        batching = read_per_model_batching(path) if per_model else None
        model = ServableModel(name, version, path)
        model.load(
            warmup=self.options.enable_model_warmup,
            warmup_batch_sizes=self._warmup_sizes,
            tags=self.options.saved_model_tags,
            warmup_iterations=self.options.num_request_iterations_for_warmup,
            onnx=OnnxOptions(
                self.options.onnx_engine,
                self.options.onnx_intra_op_threads,
                self.options.onnx_max_batch_size,
                self.options.onnx_max_call_tokens,
            ),
        )
        if per_model and self.batcher is not None:
            self.batcher.set_model_options(model, batching)
            how = "batched with its batching_params.pbtxt" if batching else "not batched (no batching_params.pbtxt)"
            log.info("model %s version %d: %s", name, version, how)
        return model

    async def reload_config(self, configs: Sequence[ModelConfig]) -> None:
        # Stopping a manager may wait for a load in progress: keep that off the event loop.
        await asyncio.to_thread(self.repository.reload, configs)

    # --- start ---------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        o = self.options
        warning = not_applied_warning(o.not_applied_flags)
        if warning:
            log.warning("%s", warning)
        if o.tensorflow_intra_op_parallelism or o.tensorflow_inter_op_parallelism:
            await asyncio.to_thread(
                configure_tensorflow_threads, o.tensorflow_intra_op_parallelism, o.tensorflow_inter_op_parallelism
            )
        if o.custom_op_modules:  # before any model loads
            imported = await asyncio.to_thread(import_op_libraries, o.custom_op_modules)
            log.info("custom op modules: %s", ", ".join(imported) or "none")
        # As TF Serving: the ports open once the initial models have loaded or failed ("port open" means ready).
        self.repository.start()
        if not await self._wait_first_load():
            return  # stopped while loading: serve() goes on to shutdown
        if o.grpc_port != 0 or o.grpc_socket_path:
            await self._start_grpc()
        if o.rest_api_port != 0:
            await self._start_rest()
        self._write_port_file()
        log.info(
            "serving %s: gRPC %s, REST %s (bound to %s)",
            ", ".join(self.repository.names()),
            self.grpc_port or "off",
            self.rest_port or "off",
            o.host,
        )
        if o.model_config_file and o.model_config_file_poll_wait_seconds > 0:
            self._tasks.append(asyncio.create_task(self._watch_config_file()))

    async def _wait_first_load(self, progress_seconds: float = 10.0) -> bool:
        """Wait for the start-up load, logging what is still loading every ``progress_seconds``; false if a stop
        was requested meanwhile."""
        start = time.monotonic()
        next_report = start + progress_seconds
        while not await asyncio.to_thread(self.repository.wait_first_load, 0.25):
            if self._stop.is_set():
                return False
            if time.monotonic() >= next_report:
                next_report += progress_seconds
                log.info(
                    "waiting for the initial models to load (%.0fs): %s",
                    time.monotonic() - start,
                    self.repository.first_load_progress(),
                )
        log.info("initial models settled after %.2fs", time.monotonic() - start)
        return not self._stop.is_set()

    async def _start_grpc(self) -> None:
        o = self.options
        server = grpc.aio.server(options=grpc_server_options(o))
        add_services(server, self.grpc)
        if self.health is not None:
            add_health_service(server, self.health)
        # As TF Serving's BuildServerCredentials: the same credentials on the TCP port and the UNIX socket.
        credentials = None
        if o.ssl_config is not None:
            credentials = grpc_server_credentials(o.ssl_config)
            log.info("Using SSL credentials%s", " (client certificates required)" if o.ssl_config.client_verify else "")
        bound = 0
        if o.grpc_port != 0:
            port = 0 if o.grpc_port == EPHEMERAL_PORT else o.grpc_port
            host = f"[{o.host}]" if ":" in o.host else o.host
            bound = _bind_grpc(server, f"{host}:{port}", f"{o.host}:{port}", credentials)
        if o.grpc_socket_path:
            _bind_grpc(server, f"unix:{o.grpc_socket_path}", o.grpc_socket_path, credentials)
        await server.start()
        self._grpc_server = server
        self.grpc_port = bound

    async def _start_rest(self) -> None:
        o = self.options
        port = 0 if o.rest_api_port == EPHEMERAL_PORT else o.rest_api_port
        family, kind, proto, _, addr = socket.getaddrinfo(
            o.host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as exc:
            sock.close()
            raise OSError(f"cannot bind REST to {o.host}:{port}: {exc.strerror}") from None
        sock.listen(1024)
        sock.setblocking(False)
        app = self.rest.build_app()
        if o.rest_api_enable_cors_support:
            app.middlewares.append(cors_middleware)
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=max(o.shutdown_grace_seconds, 0.1),
        )
        await runner.setup()
        ssl_context = server_ssl_context(o.ssl_config) if o.ssl_config is not None else None
        await web.SockSite(runner, sock, ssl_context=ssl_context).start()
        self._rest_runner = runner
        self.rest_port = sock.getsockname()[1]

    def _write_port_file(self) -> None:
        if not self.options.port_file:
            return
        doc = {
            "pid": os.getpid(),
            "host": self.options.host,
            "grpc_port": self.grpc_port,
            "rest_api_port": self.rest_port,
        }
        tmp = f"{self.options.port_file}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        os.replace(tmp, self.options.port_file)  # readers never see a half-written file

    async def _watch_config_file(self) -> None:
        path = self.options.model_config_file
        last = _file_signature(path)
        while True:
            await asyncio.sleep(self.options.model_config_file_poll_wait_seconds)
            current = _file_signature(path)
            if current == last:
                continue
            last = current
            try:
                configs = await asyncio.to_thread(load_model_config_file, path)
            except ConfigError as exc:
                log.error("model config file changed but is invalid; keeping the current models: %s", exc)
                continue
            log.info("model config file changed: reloading %d model(s)", len(configs))
            await self.reload_config(configs)

    # --- stop ----------------------------------------------------------------------------------------------------

    def request_stop(self, signame: str = "") -> None:
        if self._stop.is_set():
            log.warning("second %s: skipping the rest of the shutdown grace period", signame or "stop request")
            self._force.set()
            return
        log.info(
            "%s received: shutting down gracefully (grace %.1fs)",
            signame or "stop request",
            self.options.shutdown_grace_seconds,
        )
        self._stop.set()

    async def wait_stopped(self) -> None:
        await self._stop.wait()

    async def shutdown(self) -> None:
        grace = self.options.shutdown_grace_seconds
        deadline = time.monotonic() + grace
        self.rest.draining = True
        self.grpc.draining = True
        if self.health is not None:
            self.health.enter_shutdown()
        if self.batcher is not None:
            self.batcher.begin_drain()
        for task in self._tasks:
            task.cancel()
        stops = []
        if self._grpc_server is not None:
            stops.append(asyncio.create_task(self._grpc_server.stop(grace)))
        if self._rest_runner is not None:
            stops.append(asyncio.create_task(self._stop_rest(deadline)))
        force = asyncio.create_task(self._force.wait())
        pending = set(stops)
        while pending and not force.done() and time.monotonic() < deadline + 1:
            _, still = await asyncio.wait(
                pending | {force}, return_when=asyncio.FIRST_COMPLETED, timeout=deadline + 1 - time.monotonic()
            )
            pending = still - {force}
        force.cancel()
        if pending and self._grpc_server is not None:
            await self._grpc_server.stop(0)  # second signal or grace over: cancel what is left
        await asyncio.to_thread(self._stop_workers, max(0.0, deadline - time.monotonic()) + 1.0)
        log.info("shutdown complete")

    async def _stop_rest(self, deadline: float) -> None:
        runner = self._rest_runner
        assert runner is not None
        for site in list(runner.sites):
            await site.stop()  # closes the listening socket: new connections are refused
        while self.rest.active and time.monotonic() < deadline and not self._force.is_set():
            await asyncio.sleep(0.01)
        if self.rest.active:
            log.warning("%d REST request(s) still running at the end of the grace period", self.rest.active)
        await runner.cleanup()

    def _stop_workers(self, timeout: float) -> None:
        self.repository.stop()
        if self.batcher is not None:
            self.batcher.stop(timeout)
        self.direct.stop(timeout)
        if self.request_log is not None:
            self.request_log.close()
        self.access_log.close()


def grpc_server_options(o: ServerOptions) -> list[tuple[str, int | str]]:
    """Our channel arguments, then ``--grpc_channel_arguments`` (a key given there replaces ours)."""
    ours: dict[str, int | str] = {
        "grpc.max_receive_message_length": o.max_request_bytes,
        "grpc.max_send_message_length": -1,
        "grpc.so_reuseport": 0,  # a taken port must fail loudly, not be shared
    }
    return list({**ours, **dict(o.grpc_channel_arguments)}.items())


def metrics_paths(prometheus_path: str | None) -> tuple[str, ...]:
    """``/metrics`` always; TF Serving's Prometheus path unless ``--monitoring_config_file`` disables it."""
    return ("/metrics",) if prometheus_path in (None, "/metrics") else ("/metrics", prometheus_path)


def _bind_grpc(
    server: grpc.aio.Server, address: str, shown: str, credentials: grpc.ServerCredentials | None = None
) -> int:
    try:
        if credentials is None:
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, credentials)
    except RuntimeError as exc:
        raise OSError(f"cannot bind gRPC to {shown}: {exc}") from None
    if not bound:
        raise OSError(f"cannot bind gRPC to {shown}")
    return int(bound)


def configure_tensorflow_threads(intra: int, inter: int) -> None:
    """``--tensorflow_intra_op_parallelism`` / ``--tensorflow_inter_op_parallelism``: before any model loads."""
    import tensorflow as tf

    try:
        if intra:
            tf.config.threading.set_intra_op_parallelism_threads(intra)
        if inter:
            tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError as exc:  # TensorFlow's runtime already started (only possible when embedded)
        log.warning("TensorFlow thread pools already initialised; parallelism flags not applied: %s", exc)
        return
    log.info("TensorFlow thread pools: intra-op %s, inter-op %s", intra or "auto", inter or "auto")


_CORS_PREFLIGHT = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET",
    "Access-Control-Allow-Headers": "Content-Type",
}


@web.middleware  # aiohttp 3 takes an undecorated function for an old-style middleware factory
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """``--rest_api_enable_cors_support``, as TF Serving: preflights answered, every answer open to any origin."""
    if request.method == "OPTIONS":
        return web.Response(status=200, headers=_CORS_PREFLIGHT)
    response = await handler(request)
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _file_signature(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


async def serve(options: ServerOptions) -> int:
    server = ModelServer(options)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.request_stop, sig.name)
    try:
        await server.start()
    except OSError as exc:
        log.error("%s", exc)
        await server.shutdown()
        return 1
    await server.wait_stopped()
    await server.shutdown()
    return 0


def run(options: ServerOptions) -> int:
    return asyncio.run(serve(options))
