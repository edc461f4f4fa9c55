"""TFX Trainer module: fine-tune a TF Hub-format BERT encoder and a classification head on transformed reviews.

The exported SavedModel carries the Transform graph, so serving needs nothing but the SavedModel:
`serving_default` takes raw text and `from_examples` takes serialized tf.Examples (for TFMA and batch scoring);
both run the same tokenization and the same network, so the same review gets the same probability either way.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Mapping
from typing import Any

import keras_tuner
import tensorflow as tf
import tensorflow_hub as hub
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from pipeline_modules import features

logger = logging.getLogger("pipeline_modules.trainer")  # fixed name: TFX imports this file as a top-level module

# Hyperparameters Trainer uses when neither Tuner nor the configuration supplies them.
DEFAULT_HYPERPARAMETERS: Mapping[str, Any] = {
    "learning_rate": 5e-5,
    "dropout": 0.1,
    "warmup_fraction": 0.1,
    "weight_decay": 0.01,
    "num_epochs": 1.0,
}


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


class _ProgressLog(tf.keras.callbacks.Callback):
    """Logs loss, throughput and ETA about every tenth of training, and keeps the curve for the notebook."""

    def __init__(self, total_steps: int, batch_size: int, path: str) -> None:
        super().__init__()
        self.total_steps = total_steps
        self.batch_size = batch_size
        self.path = path
        self.log_every = max(total_steps // 10, 1)
        self.curve_every = max(total_steps // 200, 1)  # reading the metrics syncs the device: not every step
        self.curve: list[dict[str, float]] = []
        self.started = 0.0

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self.started = time.monotonic()

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        step = batch + 1
        last = step == self.total_steps
        if step % self.curve_every and step % self.log_every and not last:
            return
        logs = {k: float(v) for k, v in (logs or {}).items()}
        elapsed = time.monotonic() - self.started
        self.curve.append({"step": step, "elapsed_s": round(elapsed, 2), **logs})
        if step % self.log_every == 0 or last:
            rate = step * self.batch_size / max(elapsed, 1e-9)
            eta = (self.total_steps - step) * elapsed / step
            logger.info(
                "Trainer step %d/%d  loss %.4f  accuracy %.3f  %.1f reviews/s  ETA %.0f s",
                step,
                self.total_steps,
                logs.get("loss", float("nan")),
                logs.get("binary_accuracy", float("nan")),
                rate,
                eta,
            )

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        with tf.io.gfile.GFile(self.path, "w") as handle:
            json.dump({"batch_size": self.batch_size, "steps": self.curve}, handle)


def _input_fn(
    file_pattern: list[str],
    data_accessor: tfx.components.DataAccessor,
    tf_transform_output: tft.TFTransformOutput,
    batch_size: int,
    *,
    repeat: bool,
    seed: int,
    length_bucketing: bool = False,
) -> tf.data.Dataset:
    dataset = data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(
            batch_size=batch_size,
            label_key=features.TRANSFORMED_LABEL_KEY,
            shuffle=repeat,
            shuffle_seed=seed,
            num_epochs=None if repeat else 1,
        ),
        tf_transform_output.transformed_metadata.schema,
    )
    if length_bucketing:
        dataset = bucket_by_length(dataset, batch_size, padded_length(tf_transform_output), drop_remainder=repeat)
    return dataset.prefetch(tf.data.AUTOTUNE)


def padded_length(tf_transform_output: tft.TFTransformOutput) -> int:
    """The `max_seq_length` Transform padded every review to."""
    return int(tf_transform_output.transformed_feature_spec()[features.INPUT_WORD_IDS].shape[-1])


def _train_and_eval_datasets(
    fn_args: tfx.components.FnArgs,
    tf_transform_output: tft.TFTransformOutput,
    config: Mapping[str, Any],
    train_batch: int,
    eval_batch: int,
) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """Shuffled, repeating training batches and one pass of eval batches, length-bucketed if configured."""
    seed = int(config.get("seed", 7))
    bucketing = bool(config.get("train_length_bucketing", False))
    train = _input_fn(
        fn_args.train_files,
        fn_args.data_accessor,
        tf_transform_output,
        train_batch,
        repeat=True,
        seed=seed,
        length_bucketing=bucketing,
    )
    evaluation = _input_fn(
        fn_args.eval_files,
        fn_args.data_accessor,
        tf_transform_output,
        eval_batch,
        repeat=False,
        seed=seed,
        length_bucketing=bucketing,
    )
    return train, evaluation


def bucket_by_length(
    dataset: tf.data.Dataset, batch_size: int, max_length: int, *, drop_remainder: bool, granularity: int = 32
) -> tf.data.Dataset:
    """Re-batch (features, label) batches so each batch holds reviews of similar length, padded to its longest.

    Why: Transform pads every review to `max_seq_length`, and the encoder's cost grows with the padded length, so a
    batch of short reviews would pay for the longest possible one. Reviews are cut back to their real length (the
    mask's sum), grouped in buckets `granularity` tokens wide and padded again to the longest in their batch.
    """

    def trim(inputs: Mapping[str, tf.Tensor], label: tf.Tensor) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        length = tf.reduce_sum(tf.cast(inputs[features.INPUT_MASK], tf.int32))
        return {key: inputs[key][:length] for key in features.ENCODER_INPUT_KEYS}, label

    boundaries = list(range(granularity + 1, max_length + 1, granularity))
    return (
        dataset.unbatch()
        .map(trim, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .bucket_by_sequence_length(
            lambda inputs, _: tf.shape(inputs[features.INPUT_WORD_IDS])[0],
            bucket_boundaries=boundaries,
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
            drop_remainder=drop_remainder,
        )
    )


def trim_to_length_bucket(inputs: Mapping[str, tf.Tensor], buckets: list[int]) -> dict[str, tf.Tensor]:
    """Cut [batch, max_seq_length] encoder inputs to the smallest bucket that holds the batch's longest review.

    Only padding is removed (attention and the pooling ignore it), so scores match the untrimmed inputs to float
    rounding while a batch of short sentences costs a fraction of a full-length one. `buckets` ends at the padded
    length.
    """
    longest = tf.reduce_max(tf.reduce_sum(tf.cast(inputs[features.INPUT_MASK], tf.int32), axis=1))
    table = tf.constant(buckets, tf.int32)
    index = tf.minimum(tf.searchsorted(table, tf.reshape(longest, [1]), side="left")[0], len(buckets) - 1)
    length = table[index]
    return {key: inputs[key][:, :length] for key in features.ENCODER_INPUT_KEYS}


def serving_buckets(config: Mapping[str, Any], max_length: int) -> list[int]:
    """The configured serving buckets below the padded length, then the padded length itself."""
    configured = sorted({int(b) for b in config.get("serving_length_buckets", ()) if 0 < int(b) < max_length})
    return [*configured, max_length]


def _count_records(file_pattern: list[str]) -> int:
    files = [f for pattern in file_pattern for f in tf.io.gfile.glob(pattern)]
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1).numpy())


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


def _optimizer(learning_rate: float, weight_decay: float, total_steps: int, warmup_steps: int, schedule: str):
    if schedule == "constant":
        rate: Any = learning_rate
    else:
        rate = WarmupLinearDecay(learning_rate, total_steps, warmup_steps)
    optimizer = tf.keras.optimizers.AdamW(
        learning_rate=rate,
        weight_decay=weight_decay,
        epsilon=1e-6,
        clipnorm=1.0,
    )
    # Decoupled weight decay skips LayerNorm and biases, as in BERT's own recipe.
    optimizer.exclude_from_weight_decay(var_names=["LayerNorm", "layer_norm", "bias"])
    return optimizer


def serving_signatures(
    model: tf.keras.Model, tf_transform_output: tft.TFTransformOutput, length_buckets: list[int] | None = None
) -> dict[str, Any]:
    """`serving_default` (text) and `from_examples` (tf.Examples), padding each batch to a length bucket if given."""
    model.tft_layer = tf_transform_output.transform_features_layer()
    raw_spec = tf_transform_output.raw_feature_spec()
    review_spec = {features.REVIEW_KEY: raw_spec[features.REVIEW_KEY]}

    def predict(raw_features: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        transformed = model.tft_layer(raw_features)
        encoder_inputs = {key: transformed[key] for key in features.ENCODER_INPUT_KEYS}
        if length_buckets:
            encoder_inputs = trim_to_length_bucket(encoder_inputs, length_buckets)
        probability = tf.sigmoid(tf.cast(model(encoder_inputs, training=False), tf.float32))[:, 0]
        label = tf.where(probability >= 0.5, features.POSITIVE, features.NEGATIVE)
        return {features.PROBABILITY_OUTPUT: probability, features.LABEL_OUTPUT: label}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.TEXT_INPUT)])
    def serve_text(text: tf.Tensor) -> dict[str, tf.Tensor]:
        return predict({features.REVIEW_KEY: text})

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.EXAMPLES_INPUT)])
    def serve_examples(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return predict(tf.io.parse_example(examples, review_spec))

    return {
        features.SERVING_SIGNATURE: serve_text.get_concrete_function(),
        features.EXAMPLES_SIGNATURE: serve_examples.get_concrete_function(),
    }


def distribution_strategy() -> tf.distribute.Strategy:
    """The strategy for what this process can see: several workers, several GPUs or CPUs, or one device.

    `TF_CONFIG` naming more than one worker (Vertex AI / Kubeflow multi-worker jobs set it) means
    MultiWorkerMirroredStrategy; several local GPUs, or several logical CPU devices configured before TensorFlow
    starts, mean MirroredStrategy; otherwise the default one-device strategy.
    """
    cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    if len(cluster.get("worker", [])) + len(cluster.get("chief", [])) > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    for device_type in ("GPU", "CPU"):
        devices = tf.config.list_logical_devices(device_type)
        if len(devices) > 1:
            return tf.distribute.MirroredStrategy([d.name for d in devices])
    return tf.distribute.get_strategy()


def _batch_sizes(config: Mapping[str, Any], strategy: tf.distribute.Strategy) -> tuple[int, int]:
    """Global batch sizes: the configured per-replica sizes times the replicas that train in sync."""
    replicas = strategy.num_replicas_in_sync
    return int(config.get("train_batch_size", 32)) * replicas, int(config.get("eval_batch_size", 64)) * replicas


def compile_model(config: Mapping[str, Any], hparams: Mapping[str, Any], train_steps: int) -> tf.keras.Model:
    model = build_model(config["encoder_path"], pooling=config.get("pooling", "mean"), dropout=hparams["dropout"])
    warmup_steps = int(hparams["warmup_fraction"] * train_steps)
    model.compile(
        optimizer=_optimizer(
            hparams["learning_rate"],
            hparams["weight_decay"],
            train_steps,
            warmup_steps,
            config.get("learning_rate_schedule", "warmup_linear_decay"),
        ),
        loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[
            tf.keras.metrics.BinaryAccuracy(threshold=0.0, name="binary_accuracy"),
            tf.keras.metrics.AUC(from_logits=True, name="auc"),
        ],
        jit_compile=bool(config.get("jit_compile", False)),
    )
    return model


def configured_hyperparameters(config: Mapping[str, Any]) -> dict[str, Any]:
    """The hyperparameters the configuration sets, defaults for the rest."""
    return {key: config.get(key, default) for key, default in DEFAULT_HYPERPARAMETERS.items()}


def _hyperparameters(fn_args: tfx.components.FnArgs) -> dict[str, Any]:
    """Configuration first, then Tuner's best values (when Tuner ran) on top."""
    values = configured_hyperparameters(fn_args.custom_config or {})
    tuned = fn_args.hyperparameters
    if tuned:
        tuned_values = tuned.get("values", tuned) if isinstance(tuned, Mapping) else tuned.values
        values.update({key: tuned_values[key] for key in DEFAULT_HYPERPARAMETERS if key in tuned_values})
    return values


# TFX Trainer calls this.
def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Fine-tune, write TensorBoard logs and the training curve to the model run dir, export with signatures."""
    config = fn_args.custom_config or {}
    hparams = _hyperparameters(fn_args)
    seed = int(config.get("seed", 7))
    tf.keras.utils.set_random_seed(seed)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    strategy = distribution_strategy()
    train_batch, eval_batch = _batch_sizes(config, strategy)

    train_steps = int(fn_args.train_steps or 0)
    if train_steps <= 0:
        train_examples = _count_records(fn_args.train_files)
        train_steps = max(math.ceil(hparams["num_epochs"] * train_examples / train_batch), 1)
        logger.info(
            "Trainer: %d train examples, %s epoch(s) -> %d steps", train_examples, hparams["num_epochs"], train_steps
        )
    eval_steps = int(fn_args.eval_steps or 0) or None  # None: the whole eval split

    train_ds, eval_ds = _train_and_eval_datasets(fn_args, tf_transform_output, config, train_batch, eval_batch)

    with strategy.scope():
        model = compile_model(config, hparams, train_steps)
    logger.info(
        "Trainer: %d steps of %d reviews on %d replica(s) (%s), hyperparameters %s",
        train_steps,
        train_batch,
        strategy.num_replicas_in_sync,
        type(strategy).__name__,
        hparams,
    )
    os.makedirs(fn_args.model_run_dir, exist_ok=True)
    callbacks = [
        tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq=max(train_steps // 20, 1)),
        _ProgressLog(train_steps, train_batch, os.path.join(fn_args.model_run_dir, "training_curve.json")),
    ]
    history = model.fit(
        train_ds,
        epochs=1,
        steps_per_epoch=train_steps,
        validation_data=eval_ds,
        validation_steps=eval_steps,
        callbacks=callbacks,
        verbose=0,
    )
    summary = {key: float(values[-1]) for key, values in history.history.items()}
    summary.update(train_steps=train_steps, train_batch_size=train_batch, hyperparameters=hparams)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, "training_summary.json"), "w") as handle:
        json.dump(summary, handle, indent=2)
    logger.info("Trainer: finished, %s", {k: v for k, v in summary.items() if k != "hyperparameters"})

    buckets = serving_buckets(config, padded_length(tf_transform_output))
    signatures = serving_signatures(model, tf_transform_output, buckets)
    model.save(fn_args.serving_model_dir, save_format="tf", signatures=signatures, include_optimizer=False)


class TfKerasRandomSearch(keras_tuner.RandomSearch):
    """Random search whose trials build and fit tf_keras (Keras 2) models.

    KerasTuner 1.4 imports Keras 3 and rejects any model that is not a Keras 3 `Model`, while TFX 1.16 and
    `hub.KerasLayer` train with Keras 2; a trial here is simply "build, fit, report the final metrics".
    """

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
        tf.keras.backend.clear_session()
        model = self.hypermodel.build(trial.hyperparameters)
        history = model.fit(*args, **kwargs)
        metrics = {name: float(values[-1]) for name, values in history.history.items()}
        logger.info("Tuner: trial %s %s -> %s", trial.trial_id, trial.hyperparameters.values, metrics)
        return metrics


def search_space(config: Mapping[str, Any]) -> keras_tuner.HyperParameters:
    """Learning rate, dropout and warm-up: the three that move BERT fine-tuning most on a small budget."""
    space = keras_tuner.HyperParameters()
    space.Choice("learning_rate", [float(v) for v in config.get("tuner_learning_rates", (3e-5, 5e-5, 1e-4))])
    space.Choice("dropout", [float(v) for v in config.get("tuner_dropouts", (0.0, 0.1, 0.2))])
    space.Choice("warmup_fraction", [float(v) for v in config.get("tuner_warmup_fractions", (0.0, 0.1, 0.2))])
    return space


# TFX Tuner calls this.
def tuner_fn(fn_args: tfx.components.FnArgs) -> tfx.components.TunerFnResult:
    """A KerasTuner random search on the preset's trial budget; Tuner hands the best values to Trainer."""
    config = fn_args.custom_config or {}
    seed = int(config.get("seed", 7))
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    strategy = distribution_strategy()
    train_batch, eval_batch = _batch_sizes(config, strategy)
    train_steps = int(fn_args.train_steps or 0) or max(_count_records(fn_args.train_files) // train_batch, 1)
    fixed = configured_hyperparameters(config)
    train_ds, eval_ds = _train_and_eval_datasets(fn_args, tf_transform_output, config, train_batch, eval_batch)

    def build(hp: keras_tuner.HyperParameters) -> tf.keras.Model:
        with strategy.scope():
            return compile_model(config, {**fixed, **hp.values}, train_steps)

    tuner = TfKerasRandomSearch(
        build,
        max_trials=int(config.get("tuner_trials", 2)),
        hyperparameters=search_space(config),
        objective=keras_tuner.Objective("val_binary_accuracy", "max"),
        directory=fn_args.working_dir,
        project_name="bert_imdb_tuning",
        seed=seed,
        overwrite=True,
    )
    logger.info("Tuner: %d trials of %d steps of %d reviews", tuner.oracle.max_trials, train_steps, train_batch)
    return tfx.components.TunerFnResult(
        tuner=tuner,
        fit_kwargs={
            "x": train_ds,
            "validation_data": eval_ds,
            "steps_per_epoch": train_steps,
            "validation_steps": int(fn_args.eval_steps or 0) or None,
            "epochs": 1,
            "verbose": 0,
        },
    )
