"""A thin Python client for this server — and for TensorFlow Serving, whose APIs it speaks.

* :class:`RestClient`: standard library only (``http.client`` with a kept-alive connection); one per thread.
* :class:`GrpcClient`: the stock ``tensorflow_serving.apis`` stubs; thread-safe.
* :func:`start_server` / :class:`ServerProcess`: start ``python -m model_server`` as a subprocess on free loopback
  ports (the server binds port 0 itself and reports what it got, so there is no race for a port), wait until a model
  is AVAILABLE within a deadline, and stop it with SIGTERM. The pipeline's infrastructure validation, the tests and
  the benchmark all start servers this way.

Example::

    with start_server(model_name="sentiment", model_base_path="serving_model/sentiment") as server:
        server.wait_for_model("sentiment", timeout=120)
        print(server.rest_client().predict_texts("sentiment", ["A wonderful film."]))
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

DEFAULT_SIGNATURE = "serving_default"


class ModelLoadFailed(RuntimeError):
    """Every version the server found ended in a load error: waiting longer cannot help."""


class ModelServerError(Exception):
    """A non-OK answer: ``status`` is the HTTP status (REST) or the gRPC status code name."""

    def __init__(self, status: int | str, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def _model_path(model: str, version: int | None, label: str | None) -> str:
    path = f"/v1/models/{quote(model, safe='')}"
    if version is not None and label is not None:
        raise ValueError("pass a version or a label, not both")
    if version is not None:
        path += f"/versions/{int(version)}"
    elif label is not None:
        path += f"/labels/{quote(label, safe='')}"
    return path


class RestClient:
    """TF Serving's REST API over one persistent HTTP/1.1 connection (not thread-safe: one client per thread)."""

    def __init__(self, base_url: str, timeout: float = 30.0):
        parts = urlsplit(base_url if "://" in base_url else f"http://{base_url}")
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"expected http://host:port, got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """Raw call: (status, headers, body). Retries once on a stale kept-alive connection (predict is pure)."""
        hdrs = {"Content-Type": "application/json"} if body is not None else {}
        hdrs.update(headers or {})
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self._conn.request(method, path, body=body, headers=hdrs)
                resp = self._conn.getresponse()
                data = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
            except Exception:
                self.close()
                raise
        raise AssertionError("unreachable")

    def _json(self, method: str, path: str, doc: Any = None) -> Any:
        body = None if doc is None else json.dumps(doc).encode("utf-8")
        status, _, data = self.request(method, path, body)
        try:
            parsed = json.loads(data) if data else {}
        except ValueError:
            parsed = {"error": data[:200].decode("utf-8", "replace")}
        if status != 200:
            message = parsed.get("error", "") if isinstance(parsed, dict) else str(parsed)
            raise ModelServerError(status, message)
        return parsed

    def model_status(self, model: str, version: int | None = None, label: str | None = None) -> dict:
        return self._json("GET", _model_path(model, version, label))

    def model_metadata(self, model: str, version: int | None = None, label: str | None = None) -> dict:
        return self._json("GET", _model_path(model, version, label) + "/metadata")

    def predict(
        self,
        model: str,
        instances: Sequence[Any] | None = None,
        inputs: Any = None,
        signature_name: str | None = None,
        version: int | None = None,
        label: str | None = None,
    ) -> dict:
        """Row format (``instances``) → ``{"predictions": ...}``; columnar (``inputs``) → ``{"outputs": ...}``."""
        if (instances is None) == (inputs is None):
            raise ValueError("pass exactly one of instances or inputs")
        doc: dict[str, Any] = {"instances": list(instances)} if instances is not None else {"inputs": inputs}
        if signature_name:
            doc["signature_name"] = signature_name
        return self._json("POST", _model_path(model, version, label) + ":predict", doc)

    def predict_texts(
        self, model: str, texts: Sequence[str], version: int | None = None, label: str | None = None
    ) -> list[dict]:
        """Sentiment of each text: ``[{"probability": 0.97, "label": "positive"}, ...]``."""
        return self.predict(model, instances=list(texts), version=version, label=label)["predictions"]

    def healthz(self) -> bool:
        return self.request("GET", "/healthz")[0] == 200

    def readyz(self) -> bool:
        return self.request("GET", "/readyz")[0] == 200

    def metrics_text(self) -> str:
        status, _, data = self.request("GET", "/metrics")
        if status != 200:
            raise ModelServerError(status, data[:200].decode("utf-8", "replace"))
        return data.decode("utf-8")


class GrpcClient:
    """TF Serving's gRPC API with the stock stubs."""

    def __init__(self, target: str, timeout: float = 30.0, max_message_bytes: int = 64 * 1024 * 1024):
        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        self.timeout = timeout
        self.channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
            ],
        )
        self.prediction = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> GrpcClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def _spec(spec, model: str, version: int | None, label: str | None, signature_name: str | None = None) -> None:
        spec.name = model
        if version is not None:
            spec.version.value = int(version)
        if label is not None:
            spec.version_label = label
        if signature_name:
            spec.signature_name = signature_name

    def _call(self, method, request):
        import grpc

        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise ModelServerError(exc.code().name, exc.details() or "") from None

    def predict_request(
        self,
        model: str,
        inputs: Mapping[str, Any],
        signature_name: str = DEFAULT_SIGNATURE,
        version: int | None = None,
        label: str | None = None,
        output_filter: Sequence[str] = (),
    ):
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, model, version, label, signature_name)
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(
                value if hasattr(value, "dtype") and hasattr(value, "tensor_shape") else tf.make_tensor_proto(value)
            )
        request.output_filter.extend(output_filter)
        return request

    def predict(
        self,
        model: str,
        inputs: Mapping[str, Any],
        signature_name: str = DEFAULT_SIGNATURE,
        version: int | None = None,
        label: str | None = None,
        output_filter: Sequence[str] = (),
    ):
        """Returns the raw ``PredictResponse`` (``model_spec`` tells which version answered)."""
        request = self.predict_request(model, inputs, signature_name, version, label, output_filter)
        return self._call(self.prediction.Predict, request)

    def predict_texts(
        self, model: str, texts: Sequence[str], version: int | None = None, label: str | None = None
    ) -> list[dict]:
        import tensorflow as tf

        response = self.predict(model, {"text": [t.encode("utf-8") for t in texts]}, version=version, label=label)
        outputs = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
        rows = []
        for i in range(len(texts)):
            rows.append(
                {k: (v[i].decode("utf-8") if isinstance(v[i], bytes) else v[i].item()) for k, v in outputs.items()}
            )
        return rows

    def model_status(self, model: str, version: int | None = None, label: str | None = None):
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, model, version, label)
        return self._call(self.models.GetModelStatus, request)

    def model_metadata(self, model: str, version: int | None = None, label: str | None = None):
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec, model, version, label)
        return self._call(self.prediction.GetModelMetadata, request)


class ServerProcess:
    """A ``python -m model_server`` child process with its bound ports; stop() sends SIGTERM (graceful)."""

    def __init__(
        self, process: subprocess.Popen, host: str, grpc_port: int, rest_port: int, log_path: str, workdir: str | None
    ):
        self.process = process
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
        return f"http://{self.host}:{self.rest_port}"

    @property
    def grpc_target(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    def rest_client(self, timeout: float = 30.0) -> RestClient:
        return RestClient(self.rest_url, timeout)

    def grpc_client(self, timeout: float = 30.0) -> GrpcClient:
        return GrpcClient(self.grpc_target, timeout)

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

    def __exit__(self, *exc) -> None:
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
) -> ServerProcess:
    """Start ``python -m model_server`` on OS-chosen free ports and return once it listens (models may still be
    loading: call :meth:`ServerProcess.wait_for_model`)."""
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
    child_env = dict(os.environ)
    child_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    child_env.setdefault("TF_USE_LEGACY_KERAS", "1")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (root, child_env.get("PYTHONPATH", "")) if p)
    child_env.update(env or {})
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
            return ServerProcess(process, host, ports["grpc_port"], ports["rest_api_port"], log_path, workdir)
        except (FileNotFoundError, ValueError):
            time.sleep(0.05)
    process.kill()
    process.wait()
    shutil.rmtree(workdir, ignore_errors=True)
    raise TimeoutError(f"model server did not start listening within {startup_timeout:.0f}s")
