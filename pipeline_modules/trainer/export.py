"""The exported SavedModel's serving signatures: raw text or tf.Examples in, probability and label out.

The model carries the Transform graph, so serving needs nothing but the SavedModel: `serving_default` takes raw text,
`from_examples` takes serialized tf.Examples (for TFMA and batch scoring) and `classify` serves TF Serving's Classify
API on tf.Examples (`classes` positive/negative, `scores` probability and 1 - probability); all run the same
tokenization and the same network, so the same review gets the same probability every way.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import tensorflow as tf
from tensorflow_transform.output_wrapper import TFTransformOutput

from model_server.hints import SignatureHints, write_serving_hints
from pipeline_modules import features
from pipeline_modules.settings import TrainerSettings
from pipeline_modules.trainer.data import padded_length
from pipeline_modules.trainer.explain import EXPLAIN_HINTS, explain_signatures_for
from pipeline_modules.trainer.onnx_export import (
    TOKENIZE_SIGNATURE,
    EngineExport,
    export_onnx_engine_or_log,
    vocab_asset,
    wants_onnx_engine,
)

# What the model server should know about these signatures (assets.extra/model_server.json, read at load): the
# text must be non-empty UTF-8, and which tf.Example feature carries it (request-log masking, synthetic warm-up).
SERVING_HINTS = {
    features.SERVING_SIGNATURE: SignatureHints(
        non_empty_text_inputs=(features.TEXT_INPUT,), input_features={features.TEXT_INPUT: features.REVIEW_KEY}
    ),
    features.EXAMPLES_SIGNATURE: SignatureHints(example_inputs={features.EXAMPLES_INPUT: (features.REVIEW_KEY,)}),
    features.CLASSIFY_SIGNATURE: SignatureHints(example_inputs={features.CLASSIFY_INPUT: (features.REVIEW_KEY,)}),
}
# SignatureDef method names beyond TF2's default (the saver writes tensorflow/serving/predict on every signature):
# TF Serving run with --enable_signature_method_name_check, and tools reading the metadata, see a classifier.
SIGNATURE_METHODS = {features.CLASSIFY_SIGNATURE: features.CLASSIFY_METHOD_NAME}


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
    """`serving_default` (text), `from_examples` and `classify` (tf.Examples), padding each batch to a length bucket
    if given. One entry per signature: a new one is one more function and one more line in the returned dict."""
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

    def classify(inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        probability = serve_examples(inputs)[features.PROBABILITY_OUTPUT]
        classes = tf.constant([[features.POSITIVE, features.NEGATIVE]])
        return {
            features.CLASSES_OUTPUT: tf.tile(classes, [tf.shape(probability)[0], 1]),
            features.SCORES_OUTPUT: tf.stack([probability, 1.0 - probability], axis=1),
        }

    def strings(fn: Any, name: str) -> Any:
        return tf.function(fn, input_signature=[tf.TensorSpec([None], tf.string, name=name)]).get_concrete_function()

    return {
        features.SERVING_SIGNATURE: strings(serve_text, features.TEXT_INPUT),
        features.EXAMPLES_SIGNATURE: strings(serve_examples, features.EXAMPLES_INPUT),
        features.CLASSIFY_SIGNATURE: strings(classify, features.CLASSIFY_INPUT),
    }


def tokenize_signature(model: tf.keras.Model, length_buckets: list[int] | None = None) -> Any:
    """`tokenize`: text [batch] to the encoder's int64 inputs, cut to the length bucket as `predict` cuts them (the
    ONNX engine's exact tokenization; call after `serving_signatures`, whose Transform layer it reuses)."""

    def tokenize(text: tf.Tensor) -> dict[str, tf.Tensor]:
        transformed = model.tft_layer({features.REVIEW_KEY: text})
        inputs = {key: tf.cast(transformed[key], tf.int64) for key in features.ENCODER_INPUT_KEYS}
        return trim_to_length_bucket(inputs, length_buckets) if length_buckets else inputs

    spec = tf.TensorSpec([None], tf.string, name=features.TEXT_INPUT)
    return tf.function(tokenize, input_signature=[spec]).get_concrete_function()


def write_signature_methods(export_dir: str, methods: Mapping[str, str]) -> None:
    """Set SignatureDef method names in a saved SavedModel (local or any TensorFlow file system).

    TF2's saver has no option for it; TF Serving reads the name from the SignatureDef (and by default accepts a
    classification signature by its `inputs` / `classes` / `scores` structure alone), while `tf.saved_model.load`
    restores signatures from the object graph and ignores it, so the model loads exactly as before.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    path = os.path.join(export_dir, "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(path, "rb") as f:
        saved_model.ParseFromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        for name, method in methods.items():
            if name not in meta_graph.signature_def:
                raise ValueError(f"{export_dir} has no signature {name!r} to mark as {method}")
            meta_graph.signature_def[name].method_name = method
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(saved_model.SerializeToString(deterministic=True))
    _refresh_fingerprint(export_dir)


def _refresh_fingerprint(export_dir: str) -> None:
    """Rewrite fingerprint.pb for the edited saved_model.pb (its checksum covers that file), as the saver does."""
    try:
        from tensorflow.python.saved_model import fingerprinting_utils
    except ImportError:  # a TensorFlow without fingerprints: nothing to keep consistent
        return
    if tf.io.gfile.exists(os.path.join(export_dir, "fingerprint.pb")):
        fingerprinting_utils.write_fingerprint(export_dir)


def export_serving_model(
    model: tf.keras.Model,
    tf_transform_output: TFTransformOutput,
    serving_length_buckets: Sequence[int],
    serving_model_dir: str,
    explain: TrainerSettings | None = None,
    engine: EngineExport | None = None,
    eval_dataset: Iterable[Any] | None = None,
) -> None:
    """Save the trained model with its signatures where Trainer's `Model` artifact expects it.

    With the Trainer's settings as `explain`, the model also gets the `explain` signature (`trainer.explain`) if its
    encoder is in-process; run_fn passes them. With `engine`, an in-process model also gets the `tokenize` signature
    and the ONNX Runtime graph and manifest (`trainer.onnx_export`), measured on `eval_dataset`'s batches.
    """
    buckets = serving_buckets(serving_length_buckets, padded_length(tf_transform_output))
    signatures = serving_signatures(model, tf_transform_output, buckets)
    hints = dict(SERVING_HINTS)
    if explain is not None:
        explained = explain_signatures_for(model, explain, padded_length(tf_transform_output))
        signatures.update(explained)
        hints.update({name: EXPLAIN_HINTS for name in explained})
    accelerated = engine is not None and wants_onnx_engine(model, engine)
    if engine is not None and accelerated:
        signatures[TOKENIZE_SIGNATURE] = tokenize_signature(model, buckets)
        model.onnx_engine_vocab = vocab_asset(engine)  # tracked: saved as assets/vocab.txt, the server's tokenizer
    model.save(serving_model_dir, save_format="tf", signatures=signatures, include_optimizer=False)
    write_signature_methods(serving_model_dir, SIGNATURE_METHODS)
    write_serving_hints(serving_model_dir, hints)
    if engine is not None and accelerated:
        export_onnx_engine_or_log(model, serving_model_dir, engine, padded_length(tf_transform_output), eval_dataset)
