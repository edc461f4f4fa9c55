"""Who scores the texts: the pushed SavedModel in this process, or a running server over REST or gRPC.

All three answer the same thing for the same texts: probabilities rounded to float32's shortest form (what TF
Serving's REST API prints) and labels as strings, so a file scored in-process and one scored through a server are
equal. A scorer also says which of its errors concern one input (the row is rejected) and which mean it cannot go
on (the run stops).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from model_server.client import GrpcClient, ModelServerError, RestClient
from pipeline_modules import features
from pipeline_modules.scoring.rows import ScoringError, short

PROBE_TEXT = "a warm-up request"  # scored once before the file, so a wrong model fails at once, not at row 1
_ROW_GRPC_CODES = {"INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE", "RESOURCE_EXHAUSTED"}

Scores = tuple[list[float], list[str]]


class Scorer(Protocol):
    description: str

    def score(self, texts: Sequence[str]) -> Scores: ...

    def is_row_error(self, error: BaseException) -> bool:
        """Whether `error` is about the inputs (reject the row) rather than the model or the server (stop)."""

    def close(self) -> None: ...


def _normalized(probabilities: Any, labels: Any, count: int) -> Scores:
    values = np.asarray(probabilities, dtype=np.float32).reshape(-1)
    names = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.asarray(labels).reshape(-1)]
    if len(values) != count or len(names) != count:
        raise ScoringError(f"the model answered {len(values)} probabilities and {len(names)} labels for {count} texts")
    return [float(str(v)) for v in values], names  # str(): float32's shortest decimal form


def _is_saved_model(path: Path) -> bool:
    return any((path / name).is_file() for name in ("saved_model.pb", "saved_model.pbtxt"))


def resolve_saved_model(path: str) -> tuple[Path, int]:
    """A SavedModel directory, or the newest version under a TF Serving base path (``<path>/<version>/``).

    Versions are folders named by an integer, as TF Serving and the Pusher have them; others (a Pusher's hidden
    temporary folder) are ignored. Reads no TensorFlow, so a wrong path fails before TensorFlow takes seconds to load.
    """
    given = Path(path).expanduser()
    if not given.exists():
        raise ScoringError(f"no model at {path}: the path does not exist")
    if not given.is_dir():
        raise ScoringError(f"no model at {path}: a file, where a SavedModel folder or a base path was expected")
    if _is_saved_model(given):
        return given, int(given.name) if given.name.isascii() and given.name.isdigit() else 0
    versions = {
        int(entry.name): entry
        for entry in given.iterdir()
        if entry.name.isascii() and entry.name.isdigit() and entry.is_dir() and _is_saved_model(entry)
    }
    if not versions:
        raise ScoringError(
            f"no model at {path}: neither a SavedModel (saved_model.pb) nor a base path with numbered version folders"
        )
    newest = max(versions)
    return versions[newest], newest


class InProcessScorer:
    """The SavedModel's signature called in this process (the model server's own loading code, warm-up off)."""

    def __init__(self, path: str, signature_name: str = features.SERVING_SIGNATURE) -> None:
        model_dir, version = resolve_saved_model(path)  # before TensorFlow loads: a wrong path fails at once
        from model_server.model import ModelLoadError, ServableModel, import_op_libraries

        import_op_libraries()  # the tokenizer's ops (tensorflow_text) must be registered before loading
        self.model = ServableModel("model", version, str(model_dir))
        try:
            self.model.load(warmup=False)
        except ModelLoadError as error:
            raise ScoringError(f"cannot load the model at {model_dir}: {short(error)}") from None
        signature = self.model.signatures.get(signature_name)
        if signature is None:
            raise ScoringError(
                f"the model at {model_dir} has no signature {signature_name!r} "
                f"(it has {', '.join(sorted(self.model.signatures))})"
            )
        strings = [name for name, info in signature.inputs.items() if info.dtype.is_string]
        if features.TEXT_INPUT in strings:
            self.input_name = features.TEXT_INPUT
        elif len(signature.inputs) == 1 and strings:
            self.input_name = strings[0]
        else:
            raise ScoringError(f"signature {signature_name!r} does not take one string input (text)")
        missing = {features.PROBABILITY_OUTPUT, features.LABEL_OUTPUT} - set(signature.outputs)
        if missing:
            raise ScoringError(
                f"signature {signature_name!r} has no output {', '.join(sorted(missing))} "
                f"(its outputs: {', '.join(sorted(signature.outputs))})"
            )
        self.signature_name = signature_name
        self.description = f"{model_dir} (in-process, signature {signature_name})"

    def score(self, texts: Sequence[str]) -> Scores:
        batch = np.empty(len(texts), dtype=object)
        # bytes, as TF Serving's transports hand the model its strings: the ONNX engine's fast tokenizer takes only
        # bytes (a str would send every batch through the TensorFlow tokenize signature)
        batch[:] = [t.encode("utf-8") for t in texts]
        out = self.model.predict(self.signature_name, {self.input_name: batch})
        return _normalized(out[features.PROBABILITY_OUTPUT], out[features.LABEL_OUTPUT], len(texts))

    def is_row_error(self, error: BaseException) -> bool:
        import tensorflow as tf

        return isinstance(error, tf.errors.InvalidArgumentError | UnicodeError)

    def close(self) -> None:
        self.model.unload()


class _ServerScorer:
    """Shared by REST and gRPC: the model name, signature and input, and the probe that checks them."""

    protocol = ""

    def __init__(self, address: str, model_name: str, signature_name: str, input_name: str) -> None:
        self.address = address
        self.model_name = model_name
        self.signature_name = signature_name
        self.input_name = input_name
        self.description = f"model {model_name!r} at {address} ({self.protocol}, signature {signature_name})"

    def _client(self) -> Any:
        raise NotImplementedError

    def probe(self) -> None:
        try:
            self.score([PROBE_TEXT])
        except ModelServerError as error:
            raise ScoringError(f"{self.protocol} server {self.address}: {error}") from None
        except (OSError, ConnectionError) as error:
            raise ScoringError(f"cannot reach the {self.protocol} server at {self.address}: {short(error)}") from None

    def score(self, texts: Sequence[str]) -> Scores:
        rows = self._client().predict_texts(
            self.model_name,
            list(texts),
            input_name=self.input_name,
            output_names=(features.PROBABILITY_OUTPUT, features.LABEL_OUTPUT),
            signature_name=self.signature_name,
        )
        return _normalized(
            [r[features.PROBABILITY_OUTPUT] for r in rows], [r[features.LABEL_OUTPUT] for r in rows], len(texts)
        )

    def is_row_error(self, error: BaseException) -> bool:
        if not isinstance(error, ModelServerError):
            return False
        if isinstance(error.status, int):
            return 400 <= error.status < 500 and error.status != 404
        return error.status in _ROW_GRPC_CODES


class RestScorer(_ServerScorer):
    """TF Serving's REST predict API; one kept-alive connection per thread (RestClient is not thread-safe)."""

    protocol = "REST"

    def __init__(
        self,
        url: str,
        model_name: str,
        signature_name: str = features.SERVING_SIGNATURE,
        input_name: str = features.TEXT_INPUT,
        timeout: float = 60.0,
    ) -> None:
        try:
            RestClient(url).close()
        except ValueError as error:
            raise ScoringError(f"--rest {url!r}: {error}") from None
        super().__init__(url, model_name, signature_name, input_name)
        self.timeout = timeout
        self._local = threading.local()
        self._clients: list[RestClient] = []
        self._lock = threading.Lock()
        self.probe()

    def _client(self) -> RestClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = RestClient(self.address, self.timeout)
            with self._lock:
                self._clients.append(client)
        return client

    def close(self) -> None:
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()


class GrpcScorer(_ServerScorer):
    """TF Serving's gRPC PredictionService (thread-safe: one channel for every thread)."""

    protocol = "gRPC"

    def __init__(
        self,
        target: str,
        model_name: str,
        signature_name: str = features.SERVING_SIGNATURE,
        input_name: str = features.TEXT_INPUT,
        timeout: float = 60.0,
    ) -> None:
        super().__init__(target, model_name, signature_name, input_name)
        self.client = GrpcClient(target, timeout)
        try:
            self.probe()
        except ScoringError:
            self.client.close()
            raise

    def _client(self) -> GrpcClient:
        return self.client

    def close(self) -> None:
        self.client.close()
