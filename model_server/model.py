"""The model layer: one loaded SavedModel version, its signatures, prediction and warm-up.

Nothing above this layer touches TensorFlow objects: callers exchange NumPy arrays keyed by input/output name and
read signature descriptions (:class:`SignatureInfo`) built once at load time.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from model_server import tensors
from model_server.errors import InvalidArgument
from model_server.hints import HINTS_FILE, HintsError, SignatureHints, read_serving_hints
from model_server.tensors import DType, TensorInfo

log = logging.getLogger(__name__)


WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_RECORDS = 1000  # TF Serving's limit
INIT_OP_SIGNATURE = "__saved_model_init_op"
DEFAULT_SIGNATURE = "serving_default"  # tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY, TF Serving's default
WARMUP_TEXT = "a warm-up request"  # what synthetic warm-up puts into string inputs and tf.Example features
DEFAULT_OP_MODULES = ("tensorflow_text",)  # TF Serving's builds link TF Text's ops in; text models' tokenizers use them


class ModelLoadError(Exception):
    """The version cannot be served (unreadable SavedModel, no signatures, failing warm-up)."""


@dataclasses.dataclass(frozen=True)
class SignatureInfo:
    name: str
    inputs: Mapping[str, TensorInfo]
    outputs: Mapping[str, TensorInfo]
    method_name: str
    hints: SignatureHints = dataclasses.field(default_factory=SignatureHints)


def _tensor_info(name: str, spec: Any) -> TensorInfo:
    dtype = tensors.dtype_by_name(spec.dtype.name)
    if dtype is None:
        raise ModelLoadError(f"tensor {name!r} has unsupported dtype {spec.dtype.name}")
    shape = None if spec.shape.rank is None else tuple(spec.shape.as_list())
    return TensorInfo(name, dtype, shape)


class ServableModel:
    """One version of one model, ready to predict once :meth:`load` returned."""

    def __init__(self, name: str, version: int, path: str):
        self.name = name
        self.version = version
        self.path = path
        self.signatures: dict[str, SignatureInfo] = {}
        self._functions: dict[str, Any] = {}
        self._loaded: Any = None
        self._signature_def_map: Any = None
        self.warmup_requests = 0
        self.load_seconds = 0.0

    def __repr__(self) -> str:
        return f"ServableModel({self.name!r}, version={self.version})"

    # --- loading -------------------------------------------------------------------------------------------------

    def load(self, warmup: bool = True, warmup_batch_sizes: Sequence[int] = (1,)) -> None:
        """Load and warm up; raises :class:`ModelLoadError` with a message fit for the status API."""
        import tensorflow as tf

        start = time.monotonic()
        if not any(os.path.exists(os.path.join(self.path, f)) for f in ("saved_model.pb", "saved_model.pbtxt")):
            raise ModelLoadError(f"SavedModel file does not exist at: {self.path}/{{saved_model.pbtxt|saved_model.pb}}")
        try:
            self._signature_def_map = self._read_signature_defs()
            self._loaded = tf.saved_model.load(self.path)
        except ModelLoadError:
            raise
        except Exception as exc:  # noqa: BLE001 - any TF/proto failure means "this version cannot load"
            raise ModelLoadError(f"Failed to load SavedModel at {self.path}: {_short(exc)}") from exc
        for sig_name, fn in self._loaded.signatures.items():
            _, kwargs = fn.structured_input_signature
            outputs = fn.structured_outputs
            if not isinstance(outputs, Mapping):
                log.warning("%s: signature %r has non-dict outputs; skipped", self, sig_name)
                continue
            method = (
                self._signature_def_map.signature_def[sig_name].method_name
                if (sig_name in self._signature_def_map.signature_def)
                else "tensorflow/serving/predict"
            )
            self.signatures[sig_name] = SignatureInfo(
                name=sig_name,
                inputs={k: _tensor_info(k, spec) for k, spec in sorted(kwargs.items())},
                outputs={k: _tensor_info(k, t) for k, t in sorted(outputs.items())},
                method_name=method,
            )
            self._functions[sig_name] = fn
        if not self.signatures:
            raise ModelLoadError(f"SavedModel at {self.path} has no usable serving signatures")
        self._apply_hints()
        if warmup:
            self._warm_up(warmup_batch_sizes)
        self.load_seconds = time.monotonic() - start

    def _apply_hints(self) -> None:
        """Attach the version's serving hints to its signatures; hints that do not fit the model fail the load."""
        try:
            hints = read_serving_hints(self.path)
        except HintsError as exc:
            raise ModelLoadError(str(exc)) from None
        for sig_name, sig_hints in hints.items():
            sig = self.signatures.get(sig_name)
            if sig is None:
                raise ModelLoadError(
                    f"{HINTS_FILE} names signature {sig_name!r}, which the SavedModel lacks "
                    f"(it has {', '.join(sorted(self.signatures))})"
                )
            for name in sorted(sig_hints.input_names()):
                info = sig.inputs.get(name)
                if info is None or not info.dtype.is_string:
                    raise ModelLoadError(
                        f"{HINTS_FILE}: signature {sig_name!r} has no string input {name!r} "
                        f"(its inputs: {', '.join(f'{k} ({v.dtype.display})' for k, v in sig.inputs.items())})"
                    )
            self.signatures[sig_name] = dataclasses.replace(sig, hints=sig_hints)
        if hints:
            log.info("%s: serving hints for %s", self, ", ".join(sorted(hints)))

    def _read_signature_defs(self) -> Any:
        """The SignatureDefs exactly as stored, for GetModelMetadata (TF Serving returns the MetaGraphDef's map)."""
        from google.protobuf import text_format
        from tensorflow.core.protobuf import saved_model_pb2
        from tensorflow_serving.apis import get_model_metadata_pb2

        sm = saved_model_pb2.SavedModel()
        pb = os.path.join(self.path, "saved_model.pb")
        try:
            if os.path.exists(pb):
                with open(pb, "rb") as f:
                    sm.ParseFromString(f.read())
            else:
                with open(os.path.join(self.path, "saved_model.pbtxt"), encoding="utf-8") as f:
                    text_format.Parse(f.read(), sm)
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(f"Cannot parse the SavedModel proto at {self.path}: {_short(exc)}") from exc
        if not sm.meta_graphs:
            raise ModelLoadError(f"SavedModel at {self.path} has no MetaGraphDef")
        meta = next((m for m in sm.meta_graphs if "serve" in m.meta_info_def.tags), sm.meta_graphs[0])
        result = get_model_metadata_pb2.SignatureDefMap()
        for key, sig in meta.signature_def.items():
            result.signature_def[key].CopyFrom(sig)
        return result

    def unload(self) -> None:
        """Drop TensorFlow objects; requests still holding this object finish first (Python keeps it alive)."""
        self._functions = {}
        self._loaded = None

    # --- serving -------------------------------------------------------------------------------------------------

    @property
    def signature_def_map(self) -> Any:
        return self._signature_def_map

    def signature(self, name: str) -> SignatureInfo:
        sig = self.signatures.get(name)
        if sig is None:
            raise InvalidArgument(f'Serving signature name: "{name}" not found in signature def')
        return sig

    def predict(self, signature_name: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one (possibly batched) call; inputs are already validated by the data plane."""
        import tensorflow as tf

        sig = self.signatures[signature_name]
        fn = self._functions[signature_name]
        feed = {k: tf.convert_to_tensor(v, dtype=sig.inputs[k].dtype.name) for k, v in inputs.items()}
        result = fn(**feed)
        return {k: v.numpy() for k, v in result.items()}

    # --- warm-up -------------------------------------------------------------------------------------------------

    def _warm_up(self, batch_sizes: Sequence[int]) -> None:
        """Run requests at load so the first client request does not pay for tracing and allocation."""
        path = os.path.join(self.path, WARMUP_FILE)
        if os.path.exists(path):
            self.warmup_requests = self._replay_warmup_file(path)
            log.info("%s: replayed %d warm-up requests from %s", self, self.warmup_requests, WARMUP_FILE)
            return
        for sig_name, sig in self.signatures.items():
            for n in sorted(set(batch_sizes)):
                try:
                    self.predict(sig_name, synthetic_inputs(sig, n))
                    self.warmup_requests += 1
                except Exception as exc:  # noqa: BLE001 - our guessed input may not suit a foreign model
                    log.warning(
                        "%s: synthetic warm-up of signature %r (batch %d) failed: %s", self, sig_name, n, _short(exc)
                    )
                    break

    def _replay_warmup_file(self, path: str) -> int:
        """Replay TF Serving's warm-up TFRecord; like TF Serving, a failing record fails the load."""
        import tensorflow as tf
        from tensorflow_serving.apis import prediction_log_pb2

        count = 0
        try:
            records = list(tf.data.TFRecordDataset(path).take(MAX_WARMUP_RECORDS).as_numpy_iterator())
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(f"Cannot read warm-up file {path}: {_short(exc)}") from exc
        for i, record in enumerate(records):
            entry = prediction_log_pb2.PredictionLog()
            try:
                entry.ParseFromString(record)
            except Exception as exc:  # noqa: BLE001
                raise ModelLoadError(f"Warm-up record {i} is not a PredictionLog: {_short(exc)}") from exc
            kind = entry.WhichOneof("log_type")
            if kind != "predict_log":
                log.warning("%s: warm-up record %d is a %s; only predict_log is replayed", self, i, kind)
                continue
            request = entry.predict_log.request
            sig_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
            try:
                sig = self.signature(sig_name)
                feed = {k: tensors.proto_to_ndarray(v, k) for k, v in request.inputs.items()}
                if set(feed) != set(sig.inputs):
                    raise InvalidArgument(f"inputs {sorted(feed)} do not match signature inputs {sorted(sig.inputs)}")
                self.predict(sig_name, feed)
            except Exception as exc:  # noqa: BLE001
                raise ModelLoadError(f"Warm-up request {i} failed: {_short(exc)}") from exc
            count += 1
        return count


def import_op_libraries(modules: Iterable[str] = DEFAULT_OP_MODULES) -> list[str]:
    """Import Python packages that register TensorFlow ops (``tensorflow_text``: the ops of tokenizers baked into
    text models' serving signatures) so SavedModels using them load; returns those that were imported.

    Without it such a model fails to load with "Op type not registered 'CaseFoldUTF8'". Called once by the server
    (``--custom_op_modules``) before any model loads; call it yourself before :meth:`ServableModel.load`."""
    import importlib

    imported = []
    for name in modules:
        try:
            importlib.import_module(name)
            imported.append(name)
        except ImportError as exc:
            log.warning("custom op module %s not importable (%s); models that use its ops will fail to load", name, exc)
    return imported


def synthetic_inputs(sig: SignatureInfo, batch_size: int) -> dict[str, np.ndarray]:
    """A plausible request for a signature: short text, a tf.Example with the features its hints name, or zeros."""
    feed: dict[str, np.ndarray] = {}
    for name, info in sig.inputs.items():
        shape = [batch_size] + [1 if d is None else d for d in (info.shape or (None,))[1:]]
        feed[name] = _synthetic_tensor(info.dtype, shape, sig.hints.example_inputs.get(name))
    return feed


def _synthetic_tensor(dtype: DType, shape: list[int], example_features: Sequence[str] | None) -> np.ndarray:
    if dtype.is_string:
        if example_features is not None:
            value = _serialized_example(dict.fromkeys(example_features, WARMUP_TEXT))
        else:
            value = WARMUP_TEXT.encode("utf-8")
        arr = np.empty(int(np.prod(shape)), dtype=object)
        arr[:] = [value] * arr.size
        return arr.reshape(shape)
    return np.zeros(shape, dtype=dtype.numpy)


def _serialized_example(features: Mapping[str, str]) -> bytes:
    from tensorflow.core.example import example_pb2

    ex = example_pb2.Example()
    for k, v in features.items():
        ex.features.feature[k].bytes_list.value.append(v.encode("utf-8"))
    return bytes(ex.SerializeToString())


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def batch_sizes_for_warmup(enable_batching: bool, allowed: Iterable[int]) -> list[int]:
    sizes = {1}
    if enable_batching:
        sizes.update(allowed)
    return sorted(sizes)
