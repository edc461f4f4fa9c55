"""The ONNX engine's load check: the same probe texts through TensorFlow and through ONNX Runtime must agree.

Why at load, on the server: the exporter measured its graph against the SavedModel, but the server runs its own
ONNX Runtime build, its own tokenizer and its own padding (to the longest row, not ``max_seq_length``), so it checks
what it will actually serve, once per version, before the first request: the warm-up texts (what the model's owner
expects) and a built-in varied set, as one batch (mixed fast and TensorFlow tokenization) and one at a time (the
batch-1 latency path). A failure raises :class:`EngineRejected`, whose text the engine log line carries.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from model_server.saved_model_loader import short_error
from model_server.warmup_file import WarmupRecord
from model_server.wordpiece import MASK, TYPE_IDS, WORD_IDS, pad_rows

if TYPE_CHECKING:
    from model_server.onnx_engine import OnnxSignatureEngine

log = logging.getLogger(__name__)


class EngineRejected(Exception):
    """Why a signature stays on TensorFlow (the text goes into the engine log line)."""


MAX_WARMUP_PROBES = 32
# Texts every load check runs: short and long (past any max_seq_length, so head-and-tail truncation shows), markup,
# punctuation, casing, control whitespace, over-long words, and non-ASCII (accents, CJK, emoji) for TF's tokenizer.
PROBE_TEXTS = (
    "Great movie!",
    "a",
    "This film was wonderful, I loved it.",
    "ThE AcTiNg WaS AWFUL... Don't WASTE your time!!!",
    "Well... (sort of) -- it's 'fine'; 10/10? #1 @home [ok] {x} ~ ^_^ $5 & 50% *stars* +1 =) |/\\ <3 `q` \"quoted\"",
    "First paragraph.<br /><br />Second paragraph.<BR>Third < br / > end",
    "line one\nline two\r\n\tindented\t\ttabs",
    "unbelievable " + "a" * 100 + " " + "b" * 101 + " end",
    " ".join(f"Scene {i} was good, the acting was bad." for i in range(90)),
    "The plot was awful and the acting terrible. " * 40 + "But the ending was WONDERFUL!",
    "Café déjà vu: a naïve façade, ÀÉÎÕÜ straße",
    "日本の映画は素晴らしい。Great film",
    "Loved it 😍🎬 best movie ever",
    "Mixed “smart quotes” and an en–dash in a good film",
)


def probe_texts(warmup: Sequence[WarmupRecord], signature: str, text_input: str) -> list[str]:
    """The texts of the warm-up requests for ``signature`` (at most :data:`MAX_WARMUP_PROBES`), then PROBE_TEXTS."""
    from model_server.tensors import proto_to_ndarray

    texts: list[str] = []
    for record in warmup:
        if len(texts) >= MAX_WARMUP_PROBES:
            break
        if record.kind != "predict_log" or record.signature_name != signature:
            continue
        if text_input not in record.request.inputs:
            continue
        try:
            values = np.ravel(proto_to_ndarray(record.request.inputs[text_input], text_input))
        except Exception as exc:  # noqa: BLE001 - the warm-up replay reports a bad record; the built-in probes remain
            log.warning("warm-up record %d not used by the ONNX load check: %s", record.index, short_error(exc))
            continue
        texts.extend(v.decode("utf-8", "replace") for v in values if isinstance(v, bytes))
    return list(dict.fromkeys([*texts[:MAX_WARMUP_PROBES], *PROBE_TEXTS]))


def load_check(engine: OnnxSignatureEngine, probes: Sequence[str]) -> str:
    """Check the fast tokenizer, then the whole signature, against TensorFlow; the log detail when they agree."""
    spec, sig = engine.spec, engine.sig
    texts = np.array([t.encode("utf-8") for t in probes], dtype=object)
    if engine.fast is not None:
        _check_fast_tokenizer(engine, texts)
    expected = engine.run_tf(sig.name, {spec.text_input: texts}, engine.output_names)
    # A lower precision than fp32 may flip a label near the threshold: the manifest's accuracy figures say how often
    # (the Trainer's gate bounded it); its numeric outputs must still be within the tolerance.
    flips_allowed = spec.precision != "fp32"
    batch = engine.run_graph(engine.tokenize(texts))
    worst, flipped = _compare(expected, batch, spec.tolerance, "the probe batch", flips_allowed)
    checks = len(texts)
    for i in range(len(texts)):  # one at a time too: batch 1 is the latency path, padded to its own length
        single = engine.run_graph(engine.tokenize(texts[i : i + 1]))
        row = {k: v[i : i + 1] for k, v in expected.items()}
        diff, rows = _compare(row, single, spec.tolerance, f"probe {i} alone", flips_allowed)
        worst = max(worst, diff)
        if rows:
            flipped.add(i)
        checks += 1
    detail = f"max |diff| {worst:.2g} on {checks} load checks"
    return detail + (
        f"; {spec.precision} labels differ from TensorFlow's on {len(flipped)} probe(s)" if flipped else ""
    )


def _check_fast_tokenizer(engine: OnnxSignatureEngine, texts: np.ndarray) -> None:
    """The wordpiece tokenizer's ids must equal the tokenize signature's on the ASCII probes, else it is dropped."""
    fast = engine.fast
    assert fast is not None
    spec = engine.spec
    out = engine.run_tf(spec.tokenize_signature, {spec.text_input: texts}, [WORD_IDS, MASK, TYPE_IDS])
    padding = out[WORD_IDS][out[MASK] == 0]
    if padding.size:
        fast.pad_id = int(padding[0])  # TF Text pads with 0 whatever [PAD]'s id; the graph masks it anyway
    prepared = [fast.prepare(v) for v in texts]
    ascii_rows = [i for i, p in enumerate(prepared) if p is not None]
    width = out[WORD_IDS].shape[1]
    rows = fast.encode([prepared[i] or "" for i in ascii_rows])
    for i, ids in zip(ascii_rows, rows, strict=True):
        mine = pad_rows([ids], fast.pad_id, max(width, len(ids)))
        if any(mine[k].shape[1] != width or not np.array_equal(mine[k][0], out[k][i]) for k in mine):
            log.warning(
                "signature %s: the wordpiece tokenizer differs from %s on probe %d (%r...); TensorFlow tokenizes",
                engine.sig.name,
                spec.tokenize_signature,
                i,
                texts[i][:40],
            )
            engine.fast = None
            return


def _compare(
    expected: Mapping[str, Any], got: Mapping[str, Any], tolerance: float, what: str, flips_allowed: bool = False
) -> tuple[float, set[int]]:
    """The largest numeric difference, and the rows whose other outputs differ where ``flips_allowed``."""
    worst, flipped = 0.0, set[int]()
    for key, want in expected.items():
        want, have = np.asarray(want), np.asarray(got[key])
        if want.shape != have.shape:
            raise EngineRejected(f"output {key} has shape {have.shape}, TensorFlow's {want.shape}, on {what}")
        if want.dtype.kind in "fiu":
            diff = np.abs(want.astype(np.float64) - have.astype(np.float64))
            both_nan = np.isnan(want.astype(np.float64)) & np.isnan(have.astype(np.float64))
            diff = np.where(both_nan, 0.0, diff)
            largest = float(np.max(diff, initial=0.0)) if not np.isnan(diff).any() else float("inf")
            if not largest <= tolerance:
                raise EngineRejected(
                    f"output {key} differs from TensorFlow's by {largest:.3g} > {tolerance:g} on {what}"
                )
            worst = max(worst, largest)
        elif not np.array_equal(want, have):
            if not flips_allowed or want.ndim == 0:
                raise EngineRejected(f"output {key} differs from TensorFlow's on {what}")
            flipped |= {int(i) for i in np.flatnonzero(np.any((want != have).reshape(len(want), -1), axis=1))}
    return worst, flipped


CALIBRATION_TEXT = b"This film was wonderful, I loved it."  # a typical short request
CALIBRATION_ROWS = 32  # a full batch of TF Serving's usual max_batch_size


def calibrate(engine: OnnxSignatureEngine, runs: int = 3) -> tuple[int, str]:
    """Time both engines on 1 and on 32 short texts (best of ``runs``) and return the most rows a call may have for
    ONNX Runtime to answer it (0: every call), with the figures for the log; raises :class:`EngineRejected` when
    TensorFlow is faster at both sizes.

    Why: which engine is faster depends on the CPU and the batch (on a 2-core Xeon ONNX Runtime took a third of
    TensorFlow's time for one sentence, and a little more than TensorFlow for 32); both answer the same within the
    load check's tolerance, so each call can go to the faster one."""
    spec = engine.spec
    batches = [np.array([CALIBRATION_TEXT] * n, dtype=object) for n in (1, CALIBRATION_ROWS)]

    def on_tf(texts: np.ndarray) -> None:
        engine.run_tf(engine.sig.name, {spec.text_input: texts}, engine.output_names)

    def on_ort(texts: np.ndarray) -> None:
        engine.run_graph(engine.tokenize(texts))

    tf_ms = [_best_ms(on_tf, b, runs) for b in batches]
    ort_ms = [_best_ms(on_ort, b, runs) for b in batches]
    figures = (
        f"timed 1 / {CALIBRATION_ROWS} rows: onnxruntime {ort_ms[0]:.2f} / {ort_ms[1]:.1f} ms, "
        f"tensorflow {tf_ms[0]:.2f} / {tf_ms[1]:.1f} ms"
    )
    rows = crossover_rows(tf_ms, ort_ms, CALIBRATION_ROWS)
    if rows is None:
        raise EngineRejected(f"TensorFlow is faster here ({figures})")
    return rows, figures


def crossover_rows(tf_ms: Sequence[float], ort_ms: Sequence[float], rows: int) -> int | None:
    """From each engine's time at 1 and at ``rows`` rows (a straight line between them), the most rows at which
    ONNX Runtime is at least as fast: 0 when it is at both sizes (no limit), ``None`` when it is at neither."""
    d1, dn = ort_ms[0] - tf_ms[0], ort_ms[1] - tf_ms[1]  # > 0: ONNX Runtime slower
    if dn <= 0:  # faster on full batches: every call (were it slower alone, that costs little next to batches)
        return 0
    if d1 > 0:
        return None
    return max(1, math.floor(1 + (-d1) * (rows - 1) / (dn - d1)))


def _best_ms(call: Callable[[np.ndarray], None], texts: np.ndarray, runs: int) -> float:
    call(texts)  # the first call of a shape may pay for allocation
    best = math.inf
    for _ in range(runs):
        start = time.perf_counter()
        call(texts)
        best = min(best, time.perf_counter() - start)
    return best * 1e3
