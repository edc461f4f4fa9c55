"""The datasets Trainer and Tuner read: Transform's output as (features, label) batches, length-bucketed if asked."""

from __future__ import annotations

import math
from collections.abc import Mapping

import tensorflow as tf
from tensorflow_transform.output_wrapper import TFTransformOutput
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from pipeline_modules import features
from pipeline_modules.settings import TrainerSettings


def input_fn(
    file_pattern: list[str],
    data_accessor: tfx.components.DataAccessor,
    tf_transform_output: TFTransformOutput,
    batch_size: int,
    *,
    repeat: bool,
    seed: int,
    length_bucketing: bool,
    pad_to_bucket: bool = False,
) -> tf.data.Dataset:
    """Batches of transformed examples: shuffled and endless for training (`repeat`), one ordered pass otherwise;
    `pad_to_bucket`: bucketed batches padded to their bucket's edge (see `bucket_by_length`)."""
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
        dataset = bucket_by_length(
            dataset,
            batch_size,
            padded_length(tf_transform_output),
            drop_remainder=repeat,
            pad_to_bucket=pad_to_bucket,
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


def padded_length(tf_transform_output: TFTransformOutput) -> int:
    """The `max_seq_length` Transform padded every review to."""
    return int(tf_transform_output.transformed_feature_spec()[features.INPUT_WORD_IDS].shape[-1])


def train_and_eval_datasets(
    fn_args: tfx.components.FnArgs,
    tf_transform_output: TFTransformOutput,
    settings: TrainerSettings,
    train_batch: int,
    eval_batch: int,
) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """Shuffled, repeating training batches and one pass of eval batches, length-bucketed if configured (to the
    buckets' edges under XLA, which compiles the step once per batch shape)."""
    train = input_fn(
        fn_args.train_files,
        fn_args.data_accessor,
        tf_transform_output,
        train_batch,
        repeat=True,
        seed=settings.seed,
        length_bucketing=settings.train_length_bucketing,
        pad_to_bucket=settings.jit_compile,
    )
    evaluation = input_fn(
        fn_args.eval_files,
        fn_args.data_accessor,
        tf_transform_output,
        eval_batch,
        repeat=False,
        seed=settings.seed,
        length_bucketing=settings.train_length_bucketing,
        pad_to_bucket=settings.jit_compile,
    )
    return train, evaluation


def bucket_by_length(
    dataset: tf.data.Dataset,
    batch_size: int,
    max_length: int,
    *,
    drop_remainder: bool,
    granularity: int = 32,
    pad_to_bucket: bool = False,
) -> tf.data.Dataset:
    """Re-batch (features, label) batches so each batch holds reviews of similar length, padded to its longest
    (`pad_to_bucket`: to its bucket's upper edge, a multiple of `granularity` or `max_length`).

    Why: Transform pads every review to `max_seq_length`, and the encoder's cost grows with the padded length, so a
    batch of short reviews would pay for the longest possible one. Reviews are cut back to their real length (the
    mask's sum), grouped in buckets `granularity` tokens wide and padded again to the longest in their batch. XLA
    compiles the train step once per batch shape: padded to the bucket's edge there are at most
    `max_length / granularity` lengths (8 at 256 tokens) instead of one per longest review, for at most
    `granularity - 1` more padding in a batch.
    """

    def trim(inputs: Mapping[str, tf.Tensor], label: tf.Tensor) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        length = tf.reduce_sum(tf.cast(inputs[features.INPUT_MASK], tf.int32))
        return {key: inputs[key][:length] for key in features.ENCODER_INPUT_KEYS}, label

    boundaries = list(range(granularity + 1, max_length + 1, granularity))
    if pad_to_bucket and (not boundaries or boundaries[-1] != max_length + 1):
        boundaries.append(max_length + 1)  # padded to boundary - 1: the last bucket ends at max_length
    return (
        dataset.unbatch()
        .map(trim, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .bucket_by_sequence_length(
            lambda inputs, _: tf.shape(inputs[features.INPUT_WORD_IDS])[0],
            bucket_boundaries=boundaries,
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
            drop_remainder=drop_remainder,
            pad_to_bucket_boundary=pad_to_bucket,
        )
    )


def count_records(file_pattern: list[str]) -> int:
    """Examples in Transform's (GZIP TFRecord) output files: how steps are derived when none are configured."""
    files = [f for pattern in file_pattern for f in tf.io.gfile.glob(pattern)]
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1).numpy())


def steps_for_epochs(num_epochs: float, examples: int, batch_size: int) -> int:
    """Training steps that cover `num_epochs` passes over `examples` (at least one)."""
    return max(math.ceil(num_epochs * examples / batch_size), 1)
