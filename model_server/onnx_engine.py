"""ONNX Runtime as the execution engine of the signatures a version's ONNX manifest names, behind TF Serving's API.

A version whose ``assets.extra/onnx_engine.json`` (:mod:`model_server.onnx_manifest`) names a signature gets, for
it, an ONNX Runtime session of the exported graph, fed by the SavedModel's own tokenize signature or, for printable
ASCII texts, by the equivalent :class:`~model_server.wordpiece.FastWordPiece`. Before the first request, a load
check runs the signature both ways on probe texts (the warm-up texts and a built-in varied set) and keeps ONNX
Runtime only when every numeric output is within the manifest's ``tolerance`` of TensorFlow's and every other output
equal. Anything that goes wrong (no ``onnxruntime``, a bad manifest or graph, a disagreement) leaves the signature on
TensorFlow, as a server without the sidecar would serve it: the ONNX files never fail a version's load. Requests
the engine does not take as they are (another input key, a dtype or rank the signature does not declare, an empty
batch) and runtime failures are answered by TensorFlow too, so clients see TensorFlow's results and errors.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from model_server.config import ONNX_MAX_CALL_TOKENS
from model_server.onnx_checks import EngineRejected, calibrate, load_check, probe_texts
from model_server.onnx_manifest import (
    ENGINE_NAMES,
    MANIFEST_FILE,
    ManifestError,
    OnnxSignature,
    engine_log_line,
    read_onnx_manifest,
)
from model_server.saved_model_loader import short_error
from model_server.warmup_file import WarmupRecord
from model_server.wordpiece import MASK, TYPE_IDS, WORD_IDS, FastWordPiece, pad_rows

if TYPE_CHECKING:
    from model_server.model import SignatureInfo

log = logging.getLogger(__name__)

RunTf = Callable[[str, Mapping[str, np.ndarray], Sequence[str]], dict[str, Any]]  # SessionBundle.run
_ORT_TYPES = {
    "float32": "tensor(float)",
    "float64": "tensor(double)",
    "float16": "tensor(float16)",
    "int64": "tensor(int64)",
    "int32": "tensor(int32)",
    "int16": "tensor(int16)",
    "int8": "tensor(int8)",
    "uint8": "tensor(uint8)",
    "bool": "tensor(bool)",
    "string": "tensor(string)",
}


@dataclasses.dataclass(frozen=True)
class OnnxOptions:
    """``--onnx_engine`` (``auto``: use a version's ONNX manifest when it checks out; ``off``: TensorFlow only),
    ``--onnx_intra_op_threads`` (0: ONNX Runtime's choice, one thread per physical core),
    ``--onnx_max_batch_size`` (-1: timed at load, see :func:`~model_server.onnx_checks.calibrate`; 0: no limit) and
    ``--onnx_max_call_tokens`` (see :func:`call_groups`; 0: a batch is one call)."""

    mode: str = "auto"
    intra_op_threads: int = 0
    max_batch_size: int = -1
    max_call_tokens: int = ONNX_MAX_CALL_TOKENS

    @property
    def row_threads(self) -> int:
        """Rows of a row-by-row graph run side by side (see :func:`row_pool`): the intra-op threads, else the cores."""
        return self.intra_op_threads or available_cores()


ONNX_AUTO = OnnxOptions()  # the default: use a manifest that checks out, ONNX Runtime's thread count


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers narrow), at least 1."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@functools.cache
def row_pool(threads: int) -> Executor | None:
    """The process's threads for running a row-by-row graph's rows side by side (None: one thread, the caller's).

    Why: an int8 graph runs one row at a time (:func:`row_by_row`), and a row of a short text is too small for ONNX
    Runtime to spread over cores: on a 2-core Xeon (MiniLM-L6 int8, 32 rows) one single-threaded session run from
    two threads answered 1,225 rows/s of 16 tokens against 762 for one two-threaded session, 533 against 310 at 64
    tokens and 109 against 85 at 256, with the same scores; one row alone took 1.26 against 1.23 ms. Shared by every
    loaded version, so reloads add no threads."""
    return ThreadPoolExecutor(threads, thread_name_prefix="onnx-rows") if threads > 1 else None


def row_by_row(precision: str) -> bool:
    """Whether a graph runs one row at a time: an int8 graph quantizes its activations per call (dynamic
    quantization), so in a batch a text's score would depend on its batch mates and their padding (on `demo`, 1.4 %
    of the labels changed when the same reviews were batched in another order). One row at a time, at its own
    length, its score depends on the text alone, whatever the traffic; at about the same throughput (no padding)."""
    return precision != "fp32"


def call_groups(lengths: np.ndarray, rows: bool, max_tokens: int) -> list[np.ndarray]:
    """The rows of each ONNX Runtime call for a batch whose rows hold ``lengths`` tokens: one row per call
    (``rows``, see :func:`row_by_row`), or the rows sorted longest first in calls of at most ``max_tokens`` padded
    tokens (rows x the call's longest row; a longer row is a call of its own); ``max_tokens`` 0: one call, in order.

    Why (fp32 MiniLM-L6 served in-process on a 2-core Xeon, one interleaved run): 32 IMDB test reviews ran at 27.9/s
    as one call padded to the longest, 42.8/s in calls of 512 tokens and 41.0/s of 1024 (TensorFlow: 30.3/s); 32
    reviews of 256 tokens each, nothing to save on padding, 29.9/s against 36.4/s (one call's attention over 32 x 256
    tokens is 100 MB of scores). 32 short sentences are one call either way. Scores equal one call's (fp32)."""
    n = len(lengths)
    if rows:
        return [np.array([i]) for i in range(n)]
    if max_tokens <= 0 or n <= 1:
        return [np.arange(n)]
    order = np.argsort(-np.asarray(lengths), kind="stable")
    groups, start = [], 0
    while start < n:
        width = max(int(lengths[order[start]]), 1)
        take = max(1, min(n - start, max_tokens // width))
        groups.append(order[start : start + take])
        start += take
    return groups


def run_session(
    session: Any,
    output_names: Sequence[str],
    feed: Mapping[str, np.ndarray],
    rows: bool,
    max_tokens: int = 0,
    workers: Executor | None = None,
) -> list[Any]:
    """``session.run`` on the batch in the calls :func:`call_groups` plans, each cut to its longest row's mask
    length, the outputs put back in the batch's order (without a ``[batch, length]`` mask: uncut, in order); the
    calls side by side on ``workers`` when given (see :func:`row_pool`)."""
    mask = feed.get(MASK)
    n = len(next(iter(feed.values())))
    if mask is not None and mask.ndim == 2:
        lengths = np.sum(mask != 0, axis=1)
        groups = call_groups(lengths, rows, max_tokens)
        if len(groups) == 1 and not rows and int(np.max(lengths, initial=0)) == mask.shape[1]:
            return list(session.run(output_names, feed))  # the batch as it is: nothing to cut or reorder
    elif rows:
        lengths, groups = None, call_groups(np.zeros(n), True, 0)
    else:
        return list(session.run(output_names, feed))

    def call(index: np.ndarray) -> Any:
        width = max(int(np.max(lengths[index])), 1) if lengths is not None else None
        return session.run(output_names, {k: v[index, :width] if v.ndim == 2 else v[index] for k, v in feed.items()})

    parts = list(workers.map(call, groups)) if workers is not None and len(groups) > 1 else [call(g) for g in groups]
    order = np.concatenate(groups)
    values = []
    for j in range(len(output_names)):
        joined = np.concatenate([np.asarray(part[j]) for part in parts])
        value = np.empty_like(joined)
        value[order] = joined
        values.append(value)
    return values


class OnnxSignatureEngine:
    """One signature served by ONNX Runtime: tokenize (fast path or the tokenize signature), then the graph."""

    def __init__(
        self, sig: SignatureInfo, spec: OnnxSignature, session: Any, tokenize_outputs: Sequence[str], run_tf: RunTf
    ):
        self.sig = sig
        self.spec = spec
        self.session = session
        self.fast: FastWordPiece | None = None
        self.graph_inputs = [i.name for i in session.get_inputs()]
        self.output_names = list(sig.outputs)
        self._string_outputs = {k for k, v in sig.outputs.items() if v.dtype.is_string}
        self._tokenize_outputs = list(tokenize_outputs)
        self._trim_by_mask = MASK in self._tokenize_outputs
        self.run_tf = run_tf
        self.max_rows = 0  # calls with more rows are TensorFlow's (0: none are); set after the load check
        self.max_call_tokens = 0  # see call_groups; set from the server's options when the engine is built
        self.row_workers: Executor | None = None  # see row_pool; set for a row-by-row graph when it is built
        self._runtime_error_logged = False

    @property
    def name(self) -> str:
        """``onnxruntime`` (fp32) or ``onnxruntime_int8``: the metrics' and the Trainer's name for this engine."""
        return ENGINE_NAMES[self.spec.precision]

    @property
    def description(self) -> str:
        rows = f", calls of up to {self.max_rows} rows" if self.max_rows else ""
        return f"onnxruntime {self.spec.precision}, {'wordpiece' if self.fast else 'tensorflow'} tokenizer{rows}"

    def predict(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | None:
        """The signature's outputs, or ``None`` when TensorFlow should answer this call (see the module docstring)."""
        texts = inputs.get(self.spec.text_input)
        if texts is None or len(inputs) != 1 or texts.dtype != object or texts.ndim != 1 or texts.shape[0] == 0:
            return None
        if self.max_rows and texts.shape[0] > self.max_rows:
            return None  # TensorFlow was faster at this batch size when the version loaded (or the flag says so)
        feed = self.tokenize(texts)  # a TensorFlow error here is the tokenizer's, as TensorFlow would raise it
        try:
            return self.run_graph(feed)
        except Exception as exc:  # noqa: BLE001 - whatever ONNX Runtime raises, TensorFlow answers instead
            if not self._runtime_error_logged:
                self._runtime_error_logged = True
                log.warning(
                    "signature %s: ONNX Runtime failed (%s); TensorFlow answers", self.sig.name, short_error(exc)
                )
            return None

    def tokenize(self, texts: np.ndarray) -> dict[str, np.ndarray]:
        """The graph's inputs for ``[batch]`` texts: printable-ASCII rows by the fast tokenizer, the others by the
        tokenize signature, padded together to the longest row."""
        fast = self.fast
        prepared = [fast.prepare(v) for v in texts] if fast is not None else [None] * len(texts)
        slow = [i for i, p in enumerate(prepared) if p is None]
        if fast is None or len(slow) == len(texts):
            out = self._tokenize_tf(texts)
            return {k: out[k] for k in self.graph_inputs}
        rows: list[list[int]] = [[] for _ in prepared]
        fast_index = [i for i, p in enumerate(prepared) if p is not None]
        for i, ids in zip(fast_index, fast.encode([prepared[i] or "" for i in fast_index]), strict=True):
            rows[i] = ids
        if not slow:
            feed = pad_rows(rows, fast.pad_id)
        else:
            tf_feed = self._tokenize_tf(texts[slow])
            width = max(max(len(r) for r in rows), tf_feed[MASK].shape[1])
            feed = pad_rows(rows, fast.pad_id, width)
            w = tf_feed[MASK].shape[1]
            for key in (WORD_IDS, MASK, TYPE_IDS):
                feed[key][slow, :w] = tf_feed[key]
        return {k: feed[k] for k in self.graph_inputs}

    def _tokenize_tf(self, texts: np.ndarray) -> dict[str, np.ndarray]:
        out = self.run_tf(self.spec.tokenize_signature, {self.spec.text_input: texts}, self._tokenize_outputs)
        if self._trim_by_mask and out[MASK].ndim == 2:  # drop the columns no row uses: the graph takes any length
            width = max(int(np.max(np.sum(out[MASK] != 0, axis=1), initial=0)), 1)
            out = {k: v[:, :width] if v.ndim == 2 else v for k, v in out.items()}
        return out

    def run_graph(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {k: feed[k] for k in self.graph_inputs}
        rows = row_by_row(self.spec.precision)
        values = run_session(self.session, self.output_names, feed, rows, self.max_call_tokens, self.row_workers)
        result: dict[str, np.ndarray] = {}
        for name, value in zip(self.output_names, values, strict=True):
            if name in self._string_outputs:
                flat = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in np.ravel(value)]
                value = np.array(flat, dtype=object).reshape(np.shape(value))
            result[name] = value
        return result


def load_onnx_engines(
    model: str,
    version: int,
    path: str,
    signatures: Mapping[str, SignatureInfo],
    run_tf: RunTf,
    options: OnnxOptions = ONNX_AUTO,
    warmup: Sequence[WarmupRecord] = (),
) -> dict[str, OnnxSignatureEngine]:
    """The signatures of one loaded version that ONNX Runtime serves; logs one engine line per manifest signature."""
    try:
        manifest = read_onnx_manifest(path)
    except ManifestError as exc:
        _log_unusable_manifest(model, version, path, str(exc))
        return {}
    engines: dict[str, OnnxSignatureEngine] = {}
    for name, spec in manifest.items():
        if name not in signatures:
            log.warning(
                "%s names signature %r, which version %d of %s lacks; ignored", MANIFEST_FILE, name, version, model
            )
            continue
        try:
            if options.mode == "off":
                raise EngineRejected("--onnx_engine=off")
            start = time.monotonic()
            engine = _build(path, signatures, name, spec, run_tf, options)
            detail = load_check(engine, probe_texts(warmup, name, spec.text_input))
            if options.max_batch_size < 0:
                engine.max_rows, timing = calibrate(engine)
                detail += f"; {timing}"
            else:
                engine.max_rows = options.max_batch_size
            if engine.max_rows:
                detail += f"; calls of up to {engine.max_rows} rows, TensorFlow above"
            if engine.max_call_tokens and not row_by_row(spec.precision):
                detail += f"; batches run in calls of up to {engine.max_call_tokens} tokens"
            if engine.row_workers is not None:
                detail += f"; rows side by side on {options.row_threads} threads"
            tokenizer = "wordpiece" if engine.fast else "tensorflow"
            detail += f"; tokenizer {tokenizer}; checked in {time.monotonic() - start:.1f} s"
            if spec.measured:
                detail += "; exporter measured " + ", ".join(f"{k} {v:.3g}" for k, v in sorted(spec.measured.items()))
        except Exception as exc:  # noqa: BLE001 - any failure of the sidecar leaves the signature on TensorFlow
            reason = str(exc) if isinstance(exc, EngineRejected) else f"{type(exc).__name__}: {short_error(exc)}"
            log.info("%s", engine_log_line(model, version, name, "tensorflow", detail=reason))
            continue
        engines[name] = engine
        log.info("%s", engine_log_line(model, version, name, "onnxruntime", spec.precision, detail))
    return engines


def _log_unusable_manifest(model: str, version: int, path: str, reason: str) -> None:
    """A manifest that does not parse: say so, with an engine line for each signature it seems to name."""
    log.warning("version %d of %s: ONNX manifest not used: %s", version, model, reason)
    try:
        with open(os.path.join(path, MANIFEST_FILE), encoding="utf-8") as f:
            names = list(json.load(f).get("signatures", {}))
    except Exception:  # noqa: BLE001 - best effort: the warning above already says why
        names = []
    for name in names:
        log.info("%s", engine_log_line(model, version, str(name), "tensorflow", detail=f"bad manifest: {reason}"))


def onnx_session(graph: str | bytes, precision: str, options: OnnxOptions = ONNX_AUTO) -> Any:
    """A session set up as the server runs a ``precision`` graph; the Trainer's engine gate measures with it too."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # one thread per call for a row-by-row graph: its rows run side by side on row_pool's threads
    so.intra_op_num_threads = 1 if row_by_row(precision) else options.intra_op_threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3  # errors only: ORT's warnings about its own optimizations are not the server's news
    return ort.InferenceSession(graph, sess_options=so, providers=["CPUExecutionProvider"])


def _build(
    path: str,
    signatures: Mapping[str, SignatureInfo],
    name: str,
    spec: OnnxSignature,
    run_tf: RunTf,
    options: OnnxOptions,
) -> OnnxSignatureEngine:
    """The session and the checks of the graph against the two signatures' declared tensors."""
    sig = signatures[name]
    text = sig.inputs.get(spec.text_input)
    if set(sig.inputs) != {spec.text_input} or text is None or not text.dtype.is_string:
        raise EngineRejected(f"signature {name} does not take the one string input {spec.text_input!r}")
    tok = signatures.get(spec.tokenize_signature)
    if tok is None:
        raise EngineRejected(f"the SavedModel has no tokenize signature {spec.tokenize_signature!r}")
    tok_text = tok.inputs.get(spec.text_input)
    if set(tok.inputs) != {spec.text_input} or tok_text is None or not tok_text.dtype.is_string:
        raise EngineRejected(f"tokenize signature {spec.tokenize_signature} does not take {spec.text_input!r}")
    graph = os.path.join(path, spec.graph)
    if not os.path.isfile(graph):
        raise EngineRejected(f"graph {spec.graph} not found")
    try:
        session, rows = onnx_session(graph, spec.precision, options), row_by_row(spec.precision)
    except ImportError as exc:
        raise EngineRejected(f"onnxruntime is not importable: {short_error(exc)}") from None
    for i in session.get_inputs():
        info = tok.outputs.get(i.name)
        if info is None:
            raise EngineRejected(f"graph input {i.name} is not an output of {spec.tokenize_signature}")
        if _ORT_TYPES.get(info.dtype.name) != i.type:
            raise EngineRejected(f"graph input {i.name} is {i.type}, {spec.tokenize_signature} gives {info.dtype.name}")
    graph_outputs = {o.name: o.type for o in session.get_outputs()}
    for key, info in sig.outputs.items():
        if key not in graph_outputs:
            raise EngineRejected(f"the graph has no output {key}")
        if _ORT_TYPES.get(info.dtype.name) != graph_outputs[key]:
            raise EngineRejected(f"graph output {key} is {graph_outputs[key]}, the signature's is {info.dtype.name}")
    engine = OnnxSignatureEngine(sig, spec, session, sorted(tok.outputs), run_tf)
    engine.max_call_tokens = options.max_call_tokens
    if rows:
        engine.row_workers = row_pool(options.row_threads)
    if spec.wordpiece is not None:
        if {WORD_IDS, MASK, TYPE_IDS} - set(tok.outputs) or set(engine.graph_inputs) - {WORD_IDS, MASK, TYPE_IDS}:
            log.warning(
                "signature %s: tokenize outputs are not %s/%s/%s: no wordpiece tokenizer",
                name,
                WORD_IDS,
                MASK,
                TYPE_IDS,
            )
        else:
            try:
                engine.fast = FastWordPiece(spec.wordpiece, path)
            except (ImportError, ValueError, OSError) as exc:
                log.warning("signature %s: wordpiece tokenizer not available (%s)", name, short_error(exc))
    return engine
