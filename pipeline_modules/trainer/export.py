"""The exported SavedModel's serving signatures: raw text or tf.Examples in, probability and label out.

The model carries the Transform graph, so serving needs nothing but the SavedModel: `serving_default` takes raw text
and `from_examples` takes serialized tf.Examples (for TFMA and batch scoring); both run the same tokenization and the
same network, so the same review gets the same probability either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf
from tensorflow_transform.output_wrapper import TFTransformOutput

from model_server.hints import SignatureHints, write_serving_hints
from pipeline_modules import features
from pipeline_modules.trainer.data import padded_length

# What the model server should know about these signatures (assets.extra/model_server.json, read at load): the
# text must be non-empty UTF-8, and which tf.Example feature carries it (request-log masking, synthetic warm-up).
SERVING_HINTS = {
    features.SERVING_SIGNATURE: SignatureHints(
        non_empty_text_inputs=(features.TEXT_INPUT,), input_features={features.TEXT_INPUT: features.REVIEW_KEY}
    ),
    features.EXAMPLES_SIGNATURE: SignatureHints(example_inputs={features.EXAMPLES_INPUT: (features.REVIEW_KEY,)}),
}


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


def serving_buckets(configured: Sequence[int], max_length: int) -> list[int]:
    """The configured serving buckets (`serving_length_buckets`) below the padded length, then the padded length."""
    below = sorted({int(b) for b in configured if 0 < int(b) < max_length})
    return [*below, max_length]


def serving_signatures(
    model: tf.keras.Model, tf_transform_output: TFTransformOutput, length_buckets: list[int] | None = None
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

    def serve_text(text: tf.Tensor) -> dict[str, tf.Tensor]:
        return predict({features.REVIEW_KEY: text})

    def serve_examples(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return predict(tf.io.parse_example(examples, review_spec))

    text_fn = tf.function(serve_text, input_signature=[tf.TensorSpec([None], tf.string, name=features.TEXT_INPUT)])
    examples_fn = tf.function(
        serve_examples, input_signature=[tf.TensorSpec([None], tf.string, name=features.EXAMPLES_INPUT)]
    )
    return {
        features.SERVING_SIGNATURE: text_fn.get_concrete_function(),
        features.EXAMPLES_SIGNATURE: examples_fn.get_concrete_function(),
    }


def export_serving_model(
    model: tf.keras.Model,
    tf_transform_output: TFTransformOutput,
    serving_length_buckets: Sequence[int],
    serving_model_dir: str,
) -> None:
    """Save the trained model with its signatures where Trainer's `Model` artifact expects it."""
    buckets = serving_buckets(serving_length_buckets, padded_length(tf_transform_output))
    signatures = serving_signatures(model, tf_transform_output, buckets)
    model.save(serving_model_dir, save_format="tf", signatures=signatures, include_optimizer=False)
    write_serving_hints(serving_model_dir, SERVING_HINTS)
