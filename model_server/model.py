"""The model layer: one loaded SavedModel version, its signatures, prediction and warm-up.

Nothing above this layer touches TensorFlow objects: callers exchange NumPy arrays keyed by input/output name and
read signature descriptions (:class:`SignatureInfo`) built once at load time, from the SignatureDefs of the
MetaGraphDef that ``--saved_model_tags`` names. Loading and running are TF Serving's (session, tensor names):
:mod:`model_server.saved_model_loader`.
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
from model_server.errors import InvalidArgument, SignatureNotFound, Unavailable
from model_server.hints import HINTS_FILE, HintsError, SignatureHints, read_serving_hints
from model_server.onnx_engine import ONNX_AUTO, OnnxOptions, OnnxSignatureEngine, load_onnx_engines
from model_server.onnx_manifest import TENSORFLOW
from model_server.saved_model_loader import (
    DEFAULT_TAGS,
    INIT_OP_SIGNATURE,
    SessionBundle,
    find_meta_graph,
    read_saved_model,
    short_error,
)
from model_server.saved_model_loader import ModelLoadError as ModelLoadError  # re-exported: callers catch it here
from model_server.tensors import DType, TensorInfo
from model_server.warmup_file import DEFAULT_SIGNATURE as DEFAULT_SIGNATURE  # re-exported: the servers use it
from model_server.warmup_file import WARMUP_FILE as WARMUP_FILE  # re-exported: tools writing warm-up files use it
from model_server.warmup_file import WarmupFileError, WarmupRecord, read_warmup_file

log = logging.getLogger(__name__)


WARMUP_TEXT = "a warm-up request"  # what synthetic warm-up puts into string inputs and tf.Example features
DEFAULT_OP_MODULES = ("tensorflow_text",)  # TF Serving's builds link TF Text's ops in; text models' tokenizers use them
PREDICT_METHOD = "tensorflow/serving/predict"


@dataclasses.dataclass(frozen=True)
class SignatureInfo:
    name: str
    inputs: Mapping[str, TensorInfo]
    outputs: Mapping[str, TensorInfo]
    method_name: str
    hints: SignatureHints = dataclasses.field(default_factory=SignatureHints)


def _tensor_info(key: str, proto: Any) -> TensorInfo | None:
    """A SignatureDef ``TensorInfo`` fed or fetched by name (``None``: sparse/composite encoding or unknown dtype)."""
    dtype = tensors.BY_ENUM.get(proto.dtype)
    if dtype is None or proto.WhichOneof("encoding") != "name":
        return None
    dims = proto.tensor_shape
    shape = None if dims.unknown_rank else tuple(None if d.size < 0 else int(d.size) for d in dims.dim)
    return TensorInfo(key, dtype, shape)


def _signature_info(key: str, proto: Any) -> SignatureInfo | None:
    inputs = {k: _tensor_info(k, v) for k, v in sorted(proto.inputs.items())}
    outputs = {k: _tensor_info(k, v) for k, v in sorted(proto.outputs.items())}
    if not outputs or any(v is None for v in (*inputs.values(), *outputs.values())):
        return None
    return SignatureInfo(
        name=key,
        inputs={k: v for k, v in inputs.items() if v is not None},
        outputs={k: v for k, v in outputs.items() if v is not None},
        method_name=proto.method_name or PREDICT_METHOD,
    )


class ServableModel:
    """One version of one model, ready to predict once :meth:`load` returned."""

    def __init__(self, name: str, version: int, path: str):
        self.name = name
        self.version = version
        self.path = path
        self.signatures: dict[str, SignatureInfo] = {}
        self._bundle: SessionBundle | None = None
        self._signature_def_map: Any = None
        self.warmup_requests = 0  # TF Serving's count: warm-up file records replayed, or synthetic calls without one
        self.synthetic_warmup_requests = 0  # with a warm-up file: one call per signature the file does not cover
        self.load_seconds = 0.0
        self._onnx: dict[str, OnnxSignatureEngine] = {}  # the signatures ONNX Runtime serves

    def __repr__(self) -> str:
        return f"ServableModel({self.name!r}, version={self.version})"

    # --- loading -------------------------------------------------------------------------------------------------

    def load(
        self,
        warmup: bool = True,
        warmup_batch_sizes: Sequence[int] = (1,),
        tags: Sequence[str] = DEFAULT_TAGS,
        warmup_iterations: int = 1,
        onnx: OnnxOptions = ONNX_AUTO,
    ) -> None:
        """Load the MetaGraphDef tagged ``tags`` (``--saved_model_tags``) and warm up, replaying each warm-up record
        ``warmup_iterations`` times (``--num_request_iterations_for_warmup``); raises :class:`ModelLoadError` with a
        message fit for the status API. ``onnx`` (``--onnx_engine``): the signatures of an ONNX manifest that pass
        their load check run in ONNX Runtime (:mod:`model_server.onnx_engine`); the others, and any failure, TF."""
        start = time.monotonic()
        if not any(os.path.exists(os.path.join(self.path, f)) for f in ("saved_model.pb", "saved_model.pbtxt")):
            raise ModelLoadError(f"SavedModel file does not exist at: {self.path}/{{saved_model.pbtxt|saved_model.pb}}")
        meta = find_meta_graph(read_saved_model(self.path), tags)
        self._signature_def_map = _signature_def_map(meta)
        try:
            self._bundle = SessionBundle(self.path, tags)
        except Exception as exc:  # noqa: BLE001 - any TF/proto failure means "this version cannot load"
            raise ModelLoadError(f"Failed to load SavedModel at {self.path}: {_short(exc)}") from exc
        for key, proto in sorted(self._bundle.signature_defs.items()):
            if key == INIT_OP_SIGNATURE:
                continue
            info = _signature_info(key, proto)
            if info is None:
                log.warning("%s: signature %r has sparse, composite or unsupported tensors; skipped", self, key)
                continue
            self.signatures[key] = info
        if not self.signatures:
            raise ModelLoadError(f"SavedModel at {self.path} has no usable serving signatures")
        self._apply_hints()
        try:
            records = read_warmup_file(self.path)  # once: the replay and the ONNX load check both use it
        except WarmupFileError as exc:
            if warmup:
                raise ModelLoadError(str(exc)) from exc
            log.warning("%s: %s; not replayed (warm-up off)", self, exc)
            records = None
        self._onnx = load_onnx_engines(
            self.name, self.version, self.path, self.signatures, self._bundle.run, onnx, records or ()
        )
        if warmup:
            self._warm_up(records, warmup_batch_sizes, warmup_iterations)
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

    def unload(self) -> None:
        """Drop the session; requests already holding it finish first (Python keeps it alive, then closes it)."""
        self._bundle = None
        self._onnx = {}

    # --- serving -------------------------------------------------------------------------------------------------

    @property
    def signature_def_map(self) -> Any:
        return self._signature_def_map

    @property
    def engines(self) -> dict[str, str]:
        """Which engine answers each signature (a copy): ``tensorflow`` or e.g. ``onnxruntime fp32, wordpiece
        tokenizer``."""
        onnx = self._onnx
        return {k: onnx[k].description if k in onnx else TENSORFLOW for k in self.signatures}

    def engine_routes(self) -> dict[str, tuple[str, int]]:
        """Each signature's engine name (``tensorflow``, ``onnxruntime``, ``onnxruntime_int8``) and the most rows a
        call may have to run on it (0: any; larger calls run on TensorFlow)."""
        onnx = self._onnx
        return {k: (onnx[k].name, onnx[k].max_rows) if k in onnx else (TENSORFLOW, 0) for k in self.signatures}

    def onnx_engine(self, signature_name: str) -> OnnxSignatureEngine | None:
        """The ONNX Runtime engine serving a signature, if one does: its ``tokenize`` is what the server feeds its
        graph (benchmarks score other graphs on exactly those feeds)."""
        return self._onnx.get(signature_name)

    def signature(self, name: str) -> SignatureInfo:
        sig = self.signatures.get(name)
        if sig is None:
            raise SignatureNotFound(name)
        return sig

    def predict(self, signature_name: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one (possibly batched) call as TF Serving does: the arrays are fed as they are, and the graph decides
        whether it can take them (a TensorFlow error, INVALID_ARGUMENT for bad shapes or dtypes, when it cannot)."""
        bundle = self._bundle
        if bundle is None:
            raise Unavailable(f"{self} was unloaded")
        engine = self._onnx.get(signature_name)
        if engine is not None:
            outputs = engine.predict(inputs)  # None: a call the engine leaves to TensorFlow
            if outputs is not None:
                return outputs
        return bundle.run(signature_name, inputs, list(self.signatures[signature_name].outputs))

    # --- warm-up -------------------------------------------------------------------------------------------------

    def _warm_up(self, records: Sequence[WarmupRecord] | None, batch_sizes: Sequence[int], iterations: int) -> None:
        """Run requests at load so the first client request does not pay for tracing and allocation."""
        if records is not None:
            covered: set[str] = set()
            self.warmup_requests = self._replay_warmup_file(records, iterations, covered)
            log.info("%s: replayed %d warm-up requests from %s", self, self.warmup_requests, WARMUP_FILE)
            if iterations > 0:
                # Beyond TF Serving: a signature the file leaves out would pay its graph optimisation on its first
                # client call (seconds for a gradient graph such as `explain`); one synthetic call each, not counted.
                uncovered = {k: v for k, v in self.signatures.items() if k not in covered}
                self.synthetic_warmup_requests = self._synthetic_warm_up(uncovered, (1,))
            return
        self.warmup_requests = self._synthetic_warm_up(self.signatures, batch_sizes)

    def _synthetic_warm_up(self, signatures: Mapping[str, SignatureInfo], batch_sizes: Sequence[int]) -> int:
        """One guessed request per signature and batch size; a failure is logged, never fatal. Returns those run."""
        count = 0
        for sig_name, sig in signatures.items():
            for n in sorted(set(batch_sizes)):
                try:
                    self.predict(sig_name, synthetic_inputs(sig, n))
                    count += 1
                except Exception as exc:  # noqa: BLE001 - our guessed input may not suit a foreign model
                    log.warning(
                        "%s: synthetic warm-up of signature %r (batch %d) failed: %s", self, sig_name, n, _short(exc)
                    )
                    break
        return count

    def _replay_warmup_file(self, records: Sequence[WarmupRecord], iterations: int, covered: set[str]) -> int:
        """Replay TF Serving's warm-up records, each ``iterations`` times; as in TF Serving, a failing record fails
        the load. Returns the number of requests run; adds the signatures replayed to ``covered``."""
        count = 0
        for record in records:
            i, request = record.index, record.request
            if record.kind != "predict_log":
                log.warning("%s: warm-up record %d is a %s; only predict_log is replayed", self, i, record.kind)
                continue
            sig_name = record.signature_name
            try:
                sig = self.signature(sig_name)
                feed = {k: tensors.proto_to_ndarray(v, k) for k, v in request.inputs.items()}
                if set(feed) != set(sig.inputs):
                    raise InvalidArgument(f"inputs {sorted(feed)} do not match signature inputs {sorted(sig.inputs)}")
                for _ in range(iterations):
                    self.predict(sig_name, feed)
                    count += 1
                covered.add(sig_name)
            except Exception as exc:  # noqa: BLE001
                raise ModelLoadError(f"Warm-up request {i} failed: {_short(exc)}") from exc
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


def _signature_def_map(meta: Any) -> Any:
    """The SignatureDefs exactly as stored, for GetModelMetadata (TF Serving returns the MetaGraphDef's map)."""
    from tensorflow_serving.apis import get_model_metadata_pb2

    result = get_model_metadata_pb2.SignatureDefMap()
    for key, sig in meta.signature_def.items():
        result.signature_def[key].CopyFrom(sig)
    return result


_short = short_error


def batch_sizes_for_warmup(enable_batching: bool, allowed: Iterable[int]) -> list[int]:
    sizes = {1}
    if enable_batching:
        sizes.update(allowed)
    return sorted(sizes)
