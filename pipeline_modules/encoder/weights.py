"""Mapping Hugging Face BERT weights onto the layers of `pipeline_modules.encoder.layers`, by name and shape.

Every checkpoint tensor is taken at most once, so what was never used (an MLM head, dropped layers) is reported, and a
missing or misshapen tensor fails the conversion naming it rather than leaving a random weight in the encoder.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras

from pipeline_modules.encoder.layers import BertEmbeddings, Pooler, TransformerLayer

logger = logging.getLogger(__name__)


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
