"""The TF Hub BERT encoder as Keras 2 layers, laid out like Hugging Face's ``BertModel`` so weights map one to one.

Why hand-written layers: the pipeline, the Trainer and the model server only know the TF Hub BERT encoder interface
(a dict of ``input_word_ids``, ``input_mask``, ``input_type_ids`` in; ``pooled_output``/``sequence_output`` out), and
building it here needs neither PyTorch nor the TF Model Garden. The layers start randomly initialised;
`pipeline_modules.encoder.weights` fills them from a checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import tensorflow as tf
import tf_keras as keras

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
