"""Start ``python -m model_server`` as a child process and stop it: what tests, benchmarks and the pipeline's
infrastructure validation use.

:func:`start_server` starts it on free loopback ports (the server binds port 0 itself and reports what it got, so
there is no race for a port) and returns once it listens; :meth:`ServerProcess.wait_for_model` waits until a model is
AVAILABLE within a deadline; :meth:`ServerProcess.stop` sends SIGTERM. The child inherits this process's environment
and finds ``model_server`` where this process does (the installed package).

Example::

    with start_server(model_name="sentiment", model_base_path="serving_model/sentiment") as server:
        server.wait_for_model("sentiment", timeout=120)
        with server.rest_client() as rest:
            print(rest.predict("sentiment", instances=["A wonderful film."]))
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence

from model_server.client import ClientTls, GrpcClient, ModelServerError, RestClient


class ModelLoadFailed(RuntimeError):
    """Every version the server found ended in a load error: waiting longer cannot help."""


class ServerProcess:
    """A ``python -m model_server`` child process with its bound ports; stop() sends SIGTERM (graceful)."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        host: str,
        grpc_port: int,
        rest_port: int,
        log_path: str,
        workdir: str | None,
        tls: ClientTls | None = None,
    ) -> None:
        self.process = process
        self.tls = tls  # a server started with --ssl_config_file: its clients use TLS
        self.host = host
        self.grpc_port = grpc_port
        self.rest_port = rest_port
        self.log_path = log_path
        self._workdir = workdir
        self._final_log: str | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def rest_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.rest_port}"

    @property
    def grpc_target(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    def rest_client(self, timeout: float = 30.0) -> RestClient:
        return RestClient(self.rest_url, timeout, tls=self.tls)

    def grpc_client(self, timeout: float = 30.0) -> GrpcClient:
        return GrpcClient(self.grpc_target, timeout, tls=self.tls)

    def log_text(self) -> str:
        """The server's stdout/stderr (kept in memory after stop() removed the temporary directory)."""
        if self._final_log is not None:
            return self._final_log
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_for_model(self, model: str, version: int | None = None, timeout: float = 120.0) -> int:
        """Block until ``model`` (or that version) is AVAILABLE; returns the version. Raises TimeoutError (with the
        server's status answer) at the deadline, RuntimeError if the server died, and ModelLoadFailed at once when
        every version it reports failed to load."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        client = self.rest_client(timeout=5.0) if self.rest_port else None
        grpc_client = self.grpc_client(timeout=5.0) if client is None else None
        statuses: list[tuple[int, str, str]]
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"model server exited with {self.process.returncode}:\n{self._tail()}")
                try:
                    if client is not None:
                        statuses = [
                            (int(s["version"]), s["state"], s["status"].get("error_message", ""))
                            for s in client.model_status(model, version)["model_version_status"]
                        ]
                    else:
                        from tensorflow_serving.apis import get_model_status_pb2

                        assert grpc_client is not None
                        response = grpc_client.model_status(model, version)
                        statuses = [
                            (
                                s.version,
                                get_model_status_pb2.ModelVersionStatus.State.Name(s.state),
                                s.status.error_message,
                            )
                            for s in response.model_version_status
                        ]
                    available = [v for v, state, _ in statuses if state == "AVAILABLE"]
                    if available:
                        return max(available)
                    failed = [(v, error) for v, state, error in statuses if state == "END" and error]
                    if statuses and len(failed) == len(statuses):  # nothing left that could still come up
                        raise ModelLoadFailed(f"model {model!r} failed to load: {failed}")
                    last = repr(statuses)
                except (ModelServerError, OSError) as exc:
                    last = str(exc)
                time.sleep(0.05)
        finally:
            if client is not None:
                client.close()
            if grpc_client is not None:
                grpc_client.close()
        raise TimeoutError(f"model {model!r} not AVAILABLE within {timeout:.0f}s; last status: {last}")

    def _tail(self, chars: int = 4000) -> str:
        return self.log_text()[-chars:]

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait for the graceful exit (SIGKILL after ``timeout``); returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._workdir is not None:
            self._final_log = self.log_text()
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        return self.process.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(
    model_name: str | None = None,
    model_base_path: str | None = None,
    model_config_file: str | None = None,
    extra_args: Sequence[str] = (),
    grpc: bool = True,
    rest: bool = True,
    host: str = "127.0.0.1",
    log_path: str | None = None,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 120.0,
    python: str | None = None,
    tls: ClientTls | None = None,
) -> ServerProcess:
    """Start ``python -m model_server`` on OS-chosen free ports and return once it listens, which is after its
    initial models loaded or failed (as TF Serving; for a version that appears later, call
    :meth:`ServerProcess.wait_for_model`). ``env`` is added to this process's
    environment; ``tls`` is how its clients reach a server given ``--ssl_config_file`` in ``extra_args``."""
    workdir = tempfile.mkdtemp(prefix="model_server-")
    port_file = os.path.join(workdir, "ports.json")
    log_path = log_path or os.path.join(workdir, "server.log")
    args = [
        python or sys.executable,
        "-m",
        "model_server",
        f"--host={host}",
        f"--port_file={port_file}",
        f"--port={-1 if grpc else 0}",
        f"--rest_api_port={-1 if rest else 0}",
    ]
    if model_config_file:
        args.append(f"--model_config_file={model_config_file}")
    else:
        if not (model_name and model_base_path):
            raise ValueError("pass model_name and model_base_path, or model_config_file")
        args += [f"--model_name={model_name}", f"--model_base_path={model_base_path}"]
    args += list(extra_args)
    child_env = {**os.environ, **(env or {})}
    log_file = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    try:
        process = subprocess.Popen(
            args, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=child_env
        )
    finally:
        log_file.close()
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            with open(log_path, encoding="utf-8", errors="replace") as f:
                tail = f.read()[-4000:]
            shutil.rmtree(workdir, ignore_errors=True)
            raise RuntimeError(f"model server exited with {process.returncode} during start-up:\n{tail}")
        try:
            with open(port_file, encoding="utf-8") as f:
                ports = json.load(f)
            return ServerProcess(process, host, ports["grpc_port"], ports["rest_api_port"], log_path, workdir, tls)
        except (FileNotFoundError, ValueError):
            time.sleep(0.05)
    process.kill()
    process.wait()
    shutil.rmtree(workdir, ignore_errors=True)
    raise TimeoutError(f"model server did not start listening within {startup_timeout:.0f}s")
