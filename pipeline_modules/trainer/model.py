"""The network (a TF Hub-format BERT encoder and a one-logit head), its optimizer and how it is compiled.

An encoder our converter wrote is rebuilt in-process from its Keras layers (`pipeline_modules.encoder.loading`), so
the configured `training_precision` (a Keras dtype policy) and XLA act on all of it; one that exists only as a
SavedModel (a TF Hub download) runs through `hub.KerasLayer`, in float32, as published.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import tensorflow as tf
import tensorflow_hub as hub

from pipeline_modules import features
from pipeline_modules.encoder.loading import is_converted_encoder, load_converted_encoder
from pipeline_modules.settings import Hyperparameters, TrainerSettings
from pipeline_modules.trainer.distribution import training_precision

logger = logging.getLogger(__name__)

ENCODER_LAYER = "bert_encoder"


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


@contextlib.contextmanager
def dtype_policy(precision: str) -> Iterator[None]:
    """Keras layers created inside compute in `precision` ("float32" or "mixed_bfloat16": float32 variables).

    The policy is Keras' global state, so it is set only while the model is built and put back afterwards: layers keep
    the policy they were created under, and nothing built later (metrics, another trial's model) inherits it.
    """
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)


def encoder_layer(encoder_path: str, *, in_process: bool | None = None) -> tf.keras.layers.Layer:
    """The encoder as a layer named `bert_encoder`: rebuilt in-process if our converter wrote it, else `hub.KerasLayer`.

    `in_process=None` decides by the encoder (its `conversion.json`); True insists (and fails on a foreign
    SavedModel), False forces `hub.KerasLayer` (how the model was built before, kept for comparisons).
    """
    if in_process is None:
        in_process = is_converted_encoder(encoder_path)
    if in_process:
        encoder: tf.keras.layers.Layer = load_converted_encoder(encoder_path)
        return encoder
    policy = tf.keras.mixed_precision.global_policy().name
    if policy != "float32":
        logger.warning(
            "Encoder %s exists only as a SavedModel: it trains in float32 whatever the precision (%s applies to the "
            "head only); convert the Hugging Face checkpoint instead to train it in %s",
            encoder_path,
            policy,
            policy,
        )
    # A restored SavedModel computes in the dtypes it was saved with: declare them rather than a policy it ignores.
    return hub.KerasLayer(encoder_path, trainable=True, name=ENCODER_LAYER, dtype="float32")


def build_model(
    encoder_path: str,
    *,
    pooling: str,
    dropout: float,
    precision: str = "float32",
    in_process: bool | None = None,
) -> tf.keras.Model:
    """Encoder inputs (int64 [batch, seq]) to one logit of "positive"; any sequence length up to the encoder's.

    Under `precision="mixed_bfloat16"` the encoder computes in bfloat16 while the pooling, the head, the logit and so
    the loss stay float32 (the recipe of Keras' mixed precision guide: the last layers and the reductions in float32).
    """
    with dtype_policy(precision):
        inputs = {key: tf.keras.Input(shape=(None,), dtype=tf.int64, name=key) for key in features.ENCODER_INPUT_KEYS}
        encoder_inputs = {key: tf.cast(tensor, tf.int32) for key, tensor in inputs.items()}
        encoded = encoder_layer(encoder_path, in_process=in_process)(encoder_inputs)
        if pooling == "cls":
            pooled = encoded["pooled_output"]
        else:
            pooled = MaskedMeanPooling(name="mean_pooling", dtype="float32")(
                encoded["sequence_output"], inputs[features.INPUT_MASK]
            )
        hidden = tf.keras.layers.Dropout(dropout, name="head_dropout", dtype="float32")(pooled)
        logit = tf.keras.layers.Dense(
            1, kernel_initializer=tf.keras.initializers.TruncatedNormal(stddev=0.02), name="logit", dtype="float32"
        )(hidden)
        return tf.keras.Model(inputs=inputs, outputs=logit, name="bert_sentiment")


def float32_model(model: tf.keras.Model, settings: TrainerSettings, dropout: float) -> tf.keras.Model:
    """`model` as an all-float32 network with the same (float32) weights: what is exported after bf16 training.

    Why: the served model must compute as a float32 model does (InfraValidator and other engines compare against it),
    and mixed precision only ever kept float32 variables, so the copy loses nothing that was trained.
    """
    if not any(layer.compute_dtype in ("bfloat16", "float16") for layer in _all_layers(model)):
        return model
    copy = build_model(settings.encoder_path, pooling=settings.pooling, dropout=dropout, precision="float32")
    if [(v.name, tuple(v.shape)) for v in model.weights] != [(v.name, tuple(v.shape)) for v in copy.weights]:
        raise ValueError("The float32 copy of the trained model has other weights than the model: cannot export it")
    copy.set_weights(model.get_weights())  # mixed precision keeps float32 variables: nothing is rounded here
    return copy


def _all_layers(model: tf.keras.Model) -> Iterator[tf.keras.layers.Layer]:
    for layer in model.layers:
        yield layer
        if isinstance(layer, tf.keras.Model):
            yield from _all_layers(layer)


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


def compile_model(
    settings: TrainerSettings, hparams: Hyperparameters, train_steps: int, *, in_process: bool | None = None
) -> tf.keras.Model:
    """The model of `settings`, compiled for `train_steps` steps with `hparams` (call inside the strategy's scope).

    `in_process` as in `encoder_layer` (None: in-process whenever the encoder allows it; benchmarks compare both).
    """
    model = build_model(
        settings.encoder_path,
        pooling=settings.pooling,
        dropout=hparams.dropout,
        precision=training_precision(settings.training_precision),
        in_process=in_process,
    )
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
