"""ONNX Runtime as the exported model's serving engine: the graph and manifest the Trainer writes beside the SavedModel.

Why here: what is pushed is what is served. The Trainer converts the very weights it saves
(`pipeline_modules.encoder.onnx_graph`, in-process encoders only; a `hub.KerasLayer` encoder is an opaque graph),
measures the ONNX graph in ONNX Runtime against the SavedModel, and records the result in
`assets.extra/onnx_engine.json` (`model_server.onnx_manifest`), which travels with the version through InfraValidator
and Pusher. The model server runs `serving_default` on the graph where the manifest allows it and checks it again at
load; a `tokenize` signature in the SavedModel gives it the exact tokenization.

`serving_engine` "onnxruntime_int8" asks for a dynamically quantized graph: it is shipped only if its accuracy on the
eval split is at most `int8_max_accuracy_drop` below the fp32 graph's, and the figures go into the manifest.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from model_server.onnx_checks import PROBE_TEXTS as SERVER_PROBE_TEXTS
from model_server.onnx_engine import ONNX_AUTO, onnx_session, row_by_row, row_pool, run_session
from model_server.onnx_manifest import (
    DEFAULT_TOLERANCE,
    ENGINE_NAMES,
    OnnxSignature,
    WordPieceSpec,
    write_onnx_manifest,
)
from pipeline_modules import features
from pipeline_modules.settings import TrainerSettings
from pipeline_modules.transform_module import HTML_LINE_BREAK

logger = logging.getLogger(__name__)

TOKENIZE_SIGNATURE = "tokenize"
GRAPH_FILE = "assets.extra/onnx/model.onnx"  # relative to the version directory, as the manifest names it
VOCAB_ASSET_DIR = "assets"
ONNX_ENGINES = {name: precision for precision, name in ENGINE_NAMES.items()}  # serving_engine -> precision asked for
Z_ONE_SIDED_95 = 1.645  # int8 ships when the drop's 95 % upper bound is within int8_max_accuracy_drop
FP32_AGREEMENT_EXAMPLES = 256  # eval examples an fp32 graph is compared on (int8: engine_eval_examples, for accuracy)
PROGRESS_EXAMPLES = 2000  # a graph scoring at least this many eval examples logs its progress every 10 %
# Measured against the SavedModel's own signatures at export, in one batch and one by one (int8 quantizes each
# batch's activations with its own scale): short, punctuated, accented, HTML breaks, non-Latin, and longer than any
# max_seq_length (head + tail), with the model server's load-check probes, so its check at load is one we measured.
PROBE_TEXTS = tuple(
    dict.fromkeys(
        (
            "A wonderful film.",
            "Awful, awful acting<br /><br />and a plot I couldn't follow... Café crème!",
            "这部电影非常好看！ 정말 최고예요 😍",
            "",
            " ".join(f"word{i} and more" for i in range(200)),
            *SERVER_PROBE_TEXTS,
        )
    )
)


@dataclasses.dataclass(frozen=True)
class EngineExport:
    """What the export needs to decide and write the engine: the knobs and Transform's tokenization."""

    serving_engine: str
    int8_max_accuracy_drop: float
    eval_examples: int
    vocab_file: str
    do_lower_case: bool
    head_fraction: float

    @classmethod
    def from_settings(cls, settings: TrainerSettings) -> EngineExport:
        return cls(
            serving_engine=settings.serving_engine,
            int8_max_accuracy_drop=settings.int8_max_accuracy_drop,
            eval_examples=settings.engine_eval_examples,
            vocab_file=settings.vocab_file,
            do_lower_case=settings.do_lower_case,
            head_fraction=settings.head_fraction,
        )


@dataclasses.dataclass(frozen=True)
class EngineResult:
    """What was exported (None: no manifest, TensorFlow serves) and measured, as logged."""

    signature: OnnxSignature | None
    reason: str
    fp32_max_abs_diff: float
    examples: int
    accuracy: Mapping[str, float] = dataclasses.field(default_factory=dict)


def not_convertible(model: tf.keras.Model) -> str | None:
    """Why the network cannot be written as ONNX (as `trainer.explain` decides "in-process"), or None if it can."""
    try:
        encoder = model.get_layer("bert_encoder")
    except ValueError:
        return "the model has no layer named 'bert_encoder'"
    if not isinstance(encoder, tf.keras.Model):
        return (
            f"its encoder is a {type(encoder).__name__} (e.g. a TF Hub KerasLayer), an opaque graph; the in-process "
            "encoder (pipeline_modules.encoder.layers.build_encoder) converts"
        )
    return None


def wants_onnx_engine(model: tf.keras.Model, engine: EngineExport) -> bool:
    """Whether this export gets the ONNX engine (and the `tokenize` signature); logs why not."""
    if engine.serving_engine not in ONNX_ENGINES:
        logger.info("Export: serving_engine %s, no ONNX graph: TensorFlow serves the model", engine.serving_engine)
        return False
    reason = not_convertible(model)
    if reason:
        logger.warning("Export: no ONNX graph (TensorFlow serves the model): %s", reason)
        return False
    return True


def vocab_asset(engine: EngineExport) -> tf.saved_model.Asset:
    """The WordPiece vocabulary as a SavedModel asset (`assets/<name>`), for the server's own tokenizer."""
    return tf.saved_model.Asset(engine.vocab_file)


def _session(model: Any, precision: str) -> Any:
    return onnx_session(model.SerializeToString(), precision)


def _run(session: Any, inputs: Mapping[str, Any], precision: str) -> tuple[np.ndarray, np.ndarray]:
    """The graph's probability and label, run as the model server runs it with its default options: an int8 graph
    one row at a time, its rows side by side; fp32 in calls planned by length (`onnx_engine.call_groups`)."""
    feed = {key: np.asarray(inputs[key], dtype=np.int64) for key in features.ENCODER_INPUT_KEYS}
    rows, outputs = row_by_row(precision), [features.PROBABILITY_OUTPUT, features.LABEL_OUTPUT]
    workers = row_pool(ONNX_AUTO.row_threads) if rows else None
    probability, label = run_session(session, outputs, feed, rows, ONNX_AUTO.max_call_tokens, workers)
    return np.asarray(probability, np.float64), np.asarray(label).astype(str)


def _eval_batches(model: tf.keras.Model, dataset: Iterable[Any] | None, limit: int) -> list[dict[str, np.ndarray]]:
    """Up to `limit` transformed eval examples as (inputs, label) batches; the first `FP32_AGREEMENT_EXAMPLES` also
    carry the Keras model's probability (`expected`), which the fp32 graph must match. The rest take the fp32
    graph's own probability as `expected` once it is measured (`_measure`): a TensorFlow pass over 25,000 reviews
    would cost as much again as the two graphs' together."""
    batches: list[dict[str, np.ndarray]] = []
    seen = 0
    for inputs, labels in dataset if dataset is not None else ():
        take = min(limit - seen, int(np.shape(labels)[0]))
        if take <= 0:
            break
        cut = {key: np.asarray(inputs[key])[:take] for key in features.ENCODER_INPUT_KEYS}
        batch = {**cut, "label": np.reshape(np.asarray(labels), [-1])[:take]}
        if seen < FP32_AGREEMENT_EXAMPLES:
            logit = model({k: tf.constant(v, tf.int64) for k, v in cut.items()}, training=False)
            batch["expected"] = tf.sigmoid(tf.cast(logit, tf.float32))[:, 0].numpy().astype(np.float64)
        batches.append(batch)
        seen += take
    return batches


def _measure(
    session: Any, batches: list[dict[str, np.ndarray]], probes: list[dict[str, np.ndarray]], precision: str
) -> tuple[dict[str, float], np.ndarray]:
    """max |diff| against the SavedModel (probe texts) and the exported network (eval), the eval accuracy, and
    which eval examples were right (for the paired comparison of two graphs). The fp32 graph's probability becomes
    the `expected` of the eval examples that have none. Logs progress on long runs (the int8 gate's 25,000)."""
    diff, mismatched = 0.0, 0
    for probe in probes:
        probability, label = _run(session, probe, precision)
        diff = max(diff, float(np.max(np.abs(probability - probe["expected"]))))
        mismatched += int(np.sum(label != probe["label"]))
    right = []
    total, done, started, tenths = sum(len(b["label"]) for b in batches), 0, time.monotonic(), 1
    for batch in batches:
        probability, label = _run(session, batch, precision)
        if "expected" not in batch and precision == "fp32":
            batch["expected"] = probability
        diff = max(diff, float(np.max(np.abs(probability - batch["expected"]))))
        right.append((probability >= 0.5) == (batch["label"] == 1))
        done += len(probability)
        if total >= PROGRESS_EXAMPLES and done * 10 >= tenths * total:
            rate = done / max(time.monotonic() - started, 1e-9)
            logger.info("Export: %s graph scored %d/%d eval examples (%.1f/s)", precision, done, total, rate)
            tenths = done * 10 // total + 1
    correct = np.concatenate(right) if right else np.zeros([0], bool)
    accuracy = float(correct.mean()) if len(correct) else math.nan
    return {"max_abs_diff": diff, "label_mismatches": mismatched, "accuracy": accuracy}, correct


def drop_upper_bound(fp32_correct: np.ndarray, int8_correct: np.ndarray) -> tuple[float, float, int]:
    """fp32's accuracy minus int8's on the same examples, its one-sided 95 % upper bound, and on how many examples
    the two differ. Paired, so only those examples carry information: where int8 flips 3.6 % of the labels (as on the
    `demo` model), the bound lies 0.7 points above the measured drop on 2,000 reviews and 0.2 on all 25,000."""
    d = fp32_correct.astype(np.float64) - int8_correct.astype(np.float64)
    drop = float(d.mean()) if len(d) else math.nan
    se = float(d.std(ddof=1)) / math.sqrt(len(d)) if len(d) > 1 else math.inf
    return drop, drop + Z_ONE_SIDED_95 * se, int(np.count_nonzero(d))


def _round_up(value: float) -> float:
    """`value` rounded up to one significant digit (0.0437 -> 0.05), never below fp32's tolerance."""
    if not value > DEFAULT_TOLERANCE:
        return DEFAULT_TOLERANCE
    step = 10.0 ** math.floor(math.log10(value))
    return float(f"{math.ceil(value / step - 1e-9) * step:.1g}")


def _probes(export_dir: str) -> list[dict[str, np.ndarray]]:
    """The probe texts through the saved `tokenize` and `serving_default` (what the server compares with), as one
    batch and one text at a time."""
    loaded = tf.saved_model.load(export_dir)
    tokenize, serve = loaded.signatures[TOKENIZE_SIGNATURE], loaded.signatures[features.SERVING_SIGNATURE]

    def probe(texts: list[str]) -> dict[str, np.ndarray]:
        tokens = tokenize(**{features.TEXT_INPUT: tf.constant(texts)})
        scored = serve(**{features.TEXT_INPUT: tf.constant(texts)})
        return {
            **{key: tokens[key].numpy() for key in features.ENCODER_INPUT_KEYS},
            "expected": scored[features.PROBABILITY_OUTPUT].numpy().astype(np.float64),
            "label": scored[features.LABEL_OUTPUT].numpy().astype(str),
        }

    return [probe(list(PROBE_TEXTS)), *(probe([text]) for text in PROBE_TEXTS)]


def _read_bytes(path: str) -> bytes:
    with tf.io.gfile.GFile(path, "rb") as f:
        return bytes(f.read())


def _wordpiece(export_dir: str, engine: EngineExport, max_seq_length: int) -> WordPieceSpec | None:
    """Transform's tokenization for the server's fast tokenizer, if the vocabulary asset was saved as expected."""
    relative = f"{VOCAB_ASSET_DIR}/{os.path.basename(engine.vocab_file)}"
    saved = os.path.join(export_dir, relative)
    if not tf.io.gfile.exists(saved) or _read_bytes(saved) != _read_bytes(engine.vocab_file):
        logger.warning("Export: %s is not the vocabulary %s: no wordpiece in the manifest", relative, engine.vocab_file)
        return None
    return WordPieceSpec(
        vocab=relative,
        lower_case=engine.do_lower_case,
        max_seq_length=max_seq_length,
        head_tokens=int(round((max_seq_length - 2) * engine.head_fraction)),  # as transform_module.encode_reviews
        replacements=((HTML_LINE_BREAK, " "),),
    )


def int8_graph(fp32: Any) -> tuple[Any | None, str]:
    """The int8 graph the Trainer ships when its gate passes (None and why, where quantization fails)."""
    from pipeline_modules.encoder.onnx_graph import quantize_dynamic_int8

    with tempfile.TemporaryDirectory(prefix="onnx-int8-") as workdir:
        try:
            # per output channel: on the demo model it kept accuracy (0.7995 vs fp32 0.7997 on 6,000 test reviews)
            # where per-tensor scales lost 0.8 points, at the same speed
            return quantize_dynamic_int8(fp32, workdir, per_channel=True), ""
        except (RuntimeError, ValueError) as exc:  # the quantizer is missing or refuses the graph
            return None, f"dynamic int8 quantization failed: {exc}"


def export_onnx_engine(
    model: tf.keras.Model,
    export_dir: str,
    engine: EngineExport,
    max_seq_length: int,
    eval_dataset: Iterable[Any] | None = None,
) -> EngineResult:
    """Convert, measure and (if the graph agrees) write the graph and manifest into a saved SavedModel.

    `export_dir` must already hold the SavedModel with its `tokenize` signature; `eval_dataset` yields Transform's
    (inputs, label) eval batches (the Trainer's), of which `engine.eval_examples` are scored.
    """
    from pipeline_modules.encoder.onnx_graph import sentiment_model_to_onnx

    fp32 = sentiment_model_to_onnx(model, outputs=[features.PROBABILITY_OUTPUT, features.LABEL_OUTPUT])
    probe = _probes(export_dir)
    wants_int8 = ONNX_ENGINES[engine.serving_engine] == "int8"
    # Accuracy needs the eval split (int8's gate); fp32's agreement is a float-rounding check, a few batches do.
    limit = engine.eval_examples if wants_int8 else min(engine.eval_examples, FP32_AGREEMENT_EXAMPLES)
    batches = _eval_batches(model, eval_dataset, limit)
    examples = len(PROBE_TEXTS) + sum(len(b["label"]) for b in batches)
    fp32_figures, fp32_correct = _measure(_session(fp32, "fp32"), batches, probe, "fp32")
    diff = fp32_figures["max_abs_diff"]
    if diff > DEFAULT_TOLERANCE or fp32_figures["label_mismatches"]:
        reason = (
            f"the fp32 ONNX graph differs from the SavedModel by {diff:.2e} (tolerance {DEFAULT_TOLERANCE:.0e}, "
            f"{int(fp32_figures['label_mismatches'])} probe label(s) differ)"
        )
        logger.warning("Export: no ONNX graph (TensorFlow serves the model): %s", reason)
        return EngineResult(None, reason, diff, examples)
    graph, precision, tolerance, measured_diff = fp32, "fp32", DEFAULT_TOLERANCE, diff
    accuracy: dict[str, float] = {}
    gate: dict[str, float] = {}  # the int8 gate's statistics, in the manifest's `measured`
    reason = f"fp32, max |diff| {diff:.2e} vs the SavedModel on {examples} texts"
    if wants_int8:
        int8, why_not = int8_graph(fp32)
        if int8 is not None and not batches:
            int8, why_not = None, "no eval examples to measure its accuracy on"
        if int8 is not None:
            figures, int8_correct = _measure(_session(int8, "int8"), batches, probe, "int8")  # as served
            drop, upper, differ = drop_upper_bound(fp32_correct, int8_correct)
            gate = {"int8_label_differences": float(differ)}
            if math.isfinite(upper):  # one eval example: no bound (and the manifest is strict JSON)
                gate["int8_accuracy_drop_upper_95"] = upper
            accuracy = {
                "fp32": fp32_figures["accuracy"],
                "int8": figures["accuracy"],
                "examples": float(examples - len(PROBE_TEXTS)),
                "max_drop": engine.int8_max_accuracy_drop,
            }
            paired = (
                f"accuracy {figures['accuracy']:.4f} vs fp32 {fp32_figures['accuracy']:.4f} on "
                f"{int(accuracy['examples'])} eval examples, drop {drop:+.4f}, its 95 % upper bound {upper:.4f} "
                f"(max drop {engine.int8_max_accuracy_drop}; labels differ on {differ})"
            )
            if upper <= engine.int8_max_accuracy_drop:
                graph, precision, measured_diff = int8, "int8", figures["max_abs_diff"]
                tolerance = _round_up(measured_diff)
                reason = f"int8, {paired}, max |diff| {measured_diff:.2e} vs the SavedModel (tolerance {tolerance:g})"
            else:
                why_not = f"its eval accuracy may be more than {engine.int8_max_accuracy_drop} below fp32's: {paired}"
        if precision != "int8":
            logger.warning("Export: int8 ONNX graph not used, fp32 instead: %s", why_not)
            reason += f"; int8 not used: {why_not}"
    path = os.path.join(export_dir, GRAPH_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(graph.SerializeToString())
    signature = OnnxSignature(
        graph=GRAPH_FILE,
        text_input=features.TEXT_INPUT,
        tokenize_signature=TOKENIZE_SIGNATURE,
        precision=precision,
        tolerance=tolerance,
        wordpiece=_wordpiece(export_dir, engine, max_seq_length),
        accuracy=accuracy,
        measured={"max_abs_diff": measured_diff, "examples": examples, **gate},
    )
    write_onnx_manifest(export_dir, {features.SERVING_SIGNATURE: signature})
    logger.info("Export: ONNX Runtime engine for %r: %s", features.SERVING_SIGNATURE, reason)
    return EngineResult(signature, reason, diff, examples, accuracy)


def export_onnx_engine_or_log(
    model: tf.keras.Model,
    export_dir: str,
    engine: EngineExport,
    max_seq_length: int,
    eval_dataset: Iterable[Any] | None = None,
) -> EngineResult | None:
    """`export_onnx_engine` for the Trainer: the engine is an optional accelerator, so a failure to build or run it
    is logged with its traceback and the model is served by TensorFlow (no manifest), never a failed training run."""
    try:
        return export_onnx_engine(model, export_dir, engine, max_seq_length, eval_dataset)
    except Exception:  # noqa: BLE001 - any converter or ONNX Runtime failure: TensorFlow serves, as logged
        logger.warning("Export: no ONNX graph (TensorFlow serves the model): the export failed", exc_info=True)
        return None


__all__ = [
    "GRAPH_FILE",
    "PROBE_TEXTS",
    "TOKENIZE_SIGNATURE",
    "EngineExport",
    "EngineResult",
    "drop_upper_bound",
    "export_onnx_engine",
    "export_onnx_engine_or_log",
    "not_convertible",
    "vocab_asset",
    "wants_onnx_engine",
]
