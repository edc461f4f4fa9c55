"""A thin Python client for this server — and for TensorFlow Serving, whose APIs it speaks.

* :class:`RestClient`: standard library only (``http.client`` with a kept-alive connection); one per thread.
* :class:`GrpcClient`: the stock ``tensorflow_serving.apis`` stubs; thread-safe.

Both raise :class:`ModelServerError` for a non-OK answer. Starting a server process is :mod:`model_server.process`.

Example::

    with RestClient("localhost:8501") as rest:
        rest.predict("bert_imdb", instances=["A wonderful film."])
        rest.predict_texts("bert_imdb", ["A wonderful film."], input_name="text")
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import ssl
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

DEFAULT_SIGNATURE = "serving_default"


class ModelServerError(Exception):
    """A non-OK answer: ``status`` is the HTTP status (REST) or the gRPC status code name."""

    def __init__(self, status: int | str, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclasses.dataclass(frozen=True)
class ClientTls:
    """How a client talks to a server started with ``--ssl_config_file``: PEM files of the CA that signed the
    server's certificate and, for a server with ``client_verify: true`` (mTLS), the client's own key pair.
    ``server_name``: the name to check the certificate against when the target does not carry it (gRPC over a
    UNIX socket: e.g. ``localhost``)."""

    ca_file: str
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def grpc_credentials(self) -> Any:
        import grpc

        def read(path: str | None) -> bytes | None:
            if not path:
                return None
            with open(path, "rb") as f:
                return f.read()

        return grpc.ssl_channel_credentials(read(self.ca_file), read(self.key_file), read(self.cert_file))


def _output_row(row: Any, output_names: Sequence[str]) -> dict[str, Any]:
    """A REST prediction row as ``{output: value}``: a one-output signature answers bare values, named here."""
    if not isinstance(row, dict):
        if len(output_names) != 1:
            raise ValueError("the signature has a single output: name it in output_names")
        return {output_names[0]: row}
    return {k: row[k] for k in output_names} if output_names else row


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

    def __init__(self, base_url: str, timeout: float = 30.0, tls: ClientTls | None = None) -> None:
        parts = urlsplit(base_url if "://" in base_url else f"{'https' if tls else 'http'}://{base_url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected http://host:port or https://host:port, got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.timeout = timeout
        self._ssl_context: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self._ssl_context = tls.ssl_context() if tls else ssl.create_default_context()
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """Raw call: (status, headers, body). Retries once on a stale kept-alive connection (predict is pure)."""
        hdrs = {"Content-Type": "application/json"} if body is not None else {}
        hdrs.update(headers or {})
        for attempt in (0, 1):
            if self._conn is None:
                if self._ssl_context is not None:
                    self._conn = http.client.HTTPSConnection(
                        self.host, self.port, timeout=self.timeout, context=self._ssl_context
                    )
                else:
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

    def model_status(self, model: str, version: int | None = None, label: str | None = None) -> dict[str, Any]:
        return self._json("GET", _model_path(model, version, label))

    def model_metadata(self, model: str, version: int | None = None, label: str | None = None) -> dict[str, Any]:
        return self._json("GET", _model_path(model, version, label) + "/metadata")

    def predict(
        self,
        model: str,
        instances: Sequence[Any] | None = None,
        inputs: Any = None,
        signature_name: str | None = None,
        version: int | None = None,
        label: str | None = None,
    ) -> dict[str, Any]:
        """Row format (``instances``) → ``{"predictions": ...}``; columnar (``inputs``) → ``{"outputs": ...}``."""
        if (instances is None) == (inputs is None):
            raise ValueError("pass exactly one of instances or inputs")
        doc: dict[str, Any] = {"instances": list(instances)} if instances is not None else {"inputs": inputs}
        if signature_name:
            doc["signature_name"] = signature_name
        return self._json("POST", _model_path(model, version, label) + ":predict", doc)

    def predict_texts(
        self,
        model: str,
        texts: Sequence[str],
        *,
        input_name: str,
        output_names: Sequence[str] = (),
        signature_name: str = DEFAULT_SIGNATURE,
        version: int | None = None,
        label: str | None = None,
    ) -> list[dict[str, Any]]:
        """One row per text, ``{output: value}`` (every output, or ``output_names``), for a signature whose
        ``input_name`` takes strings: e.g. ``[{"probability": 0.97, "label": "positive"}, ...]``."""
        instances = [{input_name: t} for t in texts]
        doc = self.predict(model, instances=instances, signature_name=signature_name, version=version, label=label)
        return [_output_row(row, output_names) for row in doc["predictions"]]

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

    def __init__(
        self,
        target: str,
        timeout: float = 30.0,
        max_message_bytes: int = 64 * 1024 * 1024,
        tls: ClientTls | None = None,
    ) -> None:
        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        self.timeout = timeout
        options: list[tuple[str, int | str]] = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        if tls is not None:
            if tls.server_name:
                options.append(("grpc.ssl_target_name_override", tls.server_name))
            self.channel = grpc.secure_channel(target, tls.grpc_credentials(), options=options)
        else:
            self.channel = grpc.insecure_channel(target, options=options)
        self.prediction = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> GrpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _spec(spec: Any, model: str, version: int | None, label: str | None, signature_name: str | None = None) -> None:
        spec.name = model
        if version is not None:
            spec.version.value = int(version)
        if label is not None:
            spec.version_label = label
        if signature_name:
            spec.signature_name = signature_name

    def _call(self, method: Any, request: Any) -> Any:
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
    ) -> Any:
        """A ``PredictRequest``; values may be TensorProtos or anything ``tf.make_tensor_proto`` takes."""
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
    ) -> Any:
        """Returns the raw ``PredictResponse`` (``model_spec`` tells which version answered)."""
        request = self.predict_request(model, inputs, signature_name, version, label, output_filter)
        return self._call(self.prediction.Predict, request)

    def predict_texts(
        self,
        model: str,
        texts: Sequence[str],
        *,
        input_name: str,
        output_names: Sequence[str] = (),
        signature_name: str = DEFAULT_SIGNATURE,
        version: int | None = None,
        label: str | None = None,
    ) -> list[dict[str, Any]]:
        """As :meth:`RestClient.predict_texts`, over gRPC (``output_names`` becomes the request's output filter)."""
        import tensorflow as tf

        response = self.predict(
            model,
            {input_name: [t.encode("utf-8") for t in texts]},
            signature_name=signature_name,
            version=version,
            label=label,
            output_filter=output_names,
        )
        outputs = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
        rows = []
        for i in range(len(texts)):
            rows.append(
                {k: (v[i].decode("utf-8") if isinstance(v[i], bytes) else v[i].item()) for k, v in outputs.items()}
            )
        return rows

    def model_status(self, model: str, version: int | None = None, label: str | None = None) -> Any:
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, model, version, label)
        return self._call(self.models.GetModelStatus, request)

    def model_metadata(self, model: str, version: int | None = None, label: str | None = None) -> Any:
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec, model, version, label)
        return self._call(self.prediction.GetModelMetadata, request)
