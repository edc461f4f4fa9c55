"""The network (a TF Hub-format BERT encoder and a one-logit head), its optimizer and how it is compiled."""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_hub as hub

from pipeline_modules import features
from pipeline_modules.settings import Hyperparameters, TrainerSettings


class WarmupLinearDecay(tf.keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to the peak rate, then linear decay to zero: the BERT fine-tuning recipe."""

    def __init__(self, peak_learning_rate: float, total_steps: int, warmup_steps: int) -> None:
        self.peak_learning_rate = float(peak_learning_rate)
        self.total_steps = max(int(total_steps), 1)
        self.warmup_steps = max(int(warmup_steps), 0)

    def __call__(self, step: tf.Tensor) -> tf.Tensor:
        step = tf.cast(step, tf.float32) + 1.0
        warmup = step / max(self.warmup_steps, 1)
        decay = (self.total_steps - step + 1.0) / max(self.total_steps - self.warmup_steps, 1)
        factor = tf.where(step <= self.warmup_steps, warmup, decay)
        return self.peak_learning_rate * tf.clip_by_value(factor, 0.0, 1.0)

    def get_config(self) -> dict[str, Any]:
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
        }


class MaskedMeanPooling(tf.keras.layers.Layer):
    """Mean of the token vectors under the attention mask (how all-MiniLM-L6-v2 was trained to be read)."""

    def call(self, sequence_output: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
        weights = tf.cast(mask, sequence_output.dtype)[:, :, tf.newaxis]
        total = tf.reduce_sum(sequence_output * weights, axis=1)
        return total / tf.maximum(tf.reduce_sum(weights, axis=1), 1.0)


def build_model(encoder_path: str, *, pooling: str, dropout: float) -> tf.keras.Model:
    """Encoder inputs (int64 [batch, seq]) to one logit of "positive"; any sequence length up to the encoder's."""
    inputs = {key: tf.keras.Input(shape=(None,), dtype=tf.int64, name=key) for key in features.ENCODER_INPUT_KEYS}
    encoder_inputs = {key: tf.cast(tensor, tf.int32) for key, tensor in inputs.items()}
    encoder = hub.KerasLayer(encoder_path, trainable=True, name="bert_encoder")
    encoded = encoder(encoder_inputs)
    if pooling == "cls":
        pooled = encoded["pooled_output"]
    else:
        pooled = MaskedMeanPooling(name="mean_pooling")(encoded["sequence_output"], inputs[features.INPUT_MASK])
    hidden = tf.keras.layers.Dropout(dropout, name="head_dropout")(pooled)
    logit = tf.keras.layers.Dense(
        1, kernel_initializer=tf.keras.initializers.TruncatedNormal(stddev=0.02), name="logit"
    )(hidden)
    return tf.keras.Model(inputs=inputs, outputs=logit, name="bert_sentiment")


def optimizer(
    learning_rate: float, weight_decay: float, total_steps: int, warmup_steps: int, schedule: str
) -> tf.keras.optimizers.Optimizer:
    """AdamW at a constant rate or with warm-up and linear decay (`PipelineConfig.learning_rate_schedule`)."""
    if schedule == "constant":
        rate: Any = learning_rate
    else:
        rate = WarmupLinearDecay(learning_rate, total_steps, warmup_steps)
    adamw = tf.keras.optimizers.AdamW(
        learning_rate=rate,
        weight_decay=weight_decay,
        epsilon=1e-6,
        clipnorm=1.0,
    )
    # Decoupled weight decay skips LayerNorm and biases, as in BERT's own recipe.
    adamw.exclude_from_weight_decay(var_names=["LayerNorm", "layer_norm", "bias"])
    return adamw


def compile_model(settings: TrainerSettings, hparams: Hyperparameters, train_steps: int) -> tf.keras.Model:
    """The model of `settings`, compiled for `train_steps` steps with `hparams` (call inside the strategy's scope)."""
    model = build_model(settings.encoder_path, pooling=settings.pooling, dropout=hparams.dropout)
    warmup_steps = int(hparams.warmup_fraction * train_steps)
    model.compile(
        optimizer=optimizer(
            hparams.learning_rate,
            hparams.weight_decay,
            train_steps,
            warmup_steps,
            settings.learning_rate_schedule,
        ),
        loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[
            tf.keras.metrics.BinaryAccuracy(threshold=0.0, name="binary_accuracy"),
            tf.keras.metrics.AUC(from_logits=True, name="auc"),
        ],
        jit_compile=settings.jit_compile,
    )
    return model
