"""A test double: a tiny keyword-scoring SavedModel with the pipeline's serving contract.

Tests and the benchmark need a model that has the real BERT model's interface (``serving_default``: ``text`` →
``probability``/``label``; ``from_examples``: serialized tf.Example with ``review`` → the same) and its serving hints,
but builds in about a second and answers in microseconds, so they exercise the server rather than the model.
``bias`` shifts every probability, which lets a test tell version 1's answers from version 2's over REST (whose
responses carry no version).

The names are the pipeline's (``pipeline_modules/features.py``), copied rather than imported so that this module
loads without the pipeline's Keras 2 set-up; ``tests/model_server/test_config.py`` keeps the two equal.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

from model_server.hints import SignatureHints, write_serving_hints
from model_server.model import WARMUP_FILE

SERVING_SIGNATURE = "serving_default"
EXAMPLES_SIGNATURE = "from_examples"
TEXT_INPUT = "text"
EXAMPLES_INPUT = "examples"
PROBABILITY_OUTPUT = "probability"
LABEL_OUTPUT = "label"
POSITIVE = "positive"
NEGATIVE = "negative"
REVIEW_KEY = "review"
CONTRACT_NAMES = (
    "SERVING_SIGNATURE",
    "EXAMPLES_SIGNATURE",
    "TEXT_INPUT",
    "EXAMPLES_INPUT",
    "PROBABILITY_OUTPUT",
    "LABEL_OUTPUT",
    "POSITIVE",
    "NEGATIVE",
    "REVIEW_KEY",
)

# What the pipeline's Trainer writes beside its SavedModel (the same write_serving_hints call).
SERVING_HINTS = {
    SERVING_SIGNATURE: SignatureHints(non_empty_text_inputs=(TEXT_INPUT,), input_features={TEXT_INPUT: REVIEW_KEY}),
    EXAMPLES_SIGNATURE: SignatureHints(example_inputs={EXAMPLES_INPUT: (REVIEW_KEY,)}),
}

POSITIVE_WORDS = (
    "good",
    "great",
    "excellent",
    "wonderful",
    "amazing",
    "best",
    "love",
    "loved",
    "brilliant",
    "fantastic",
    "superb",
    "enjoyed",
)
NEGATIVE_WORDS = (
    "bad",
    "terrible",
    "awful",
    "worst",
    "boring",
    "waste",
    "poor",
    "hate",
    "hated",
    "horrible",
    "dull",
    "disappointing",
)


def build_toy_model(
    export_dir: str,
    bias: float = 0.0,
    warmup_texts: Sequence[str] = (),
    work_layers: int = 0,
    work_dim: int = 768,
    text_ops: bool = False,
    hints: bool = True,
) -> str:
    """Write the SavedModel to ``export_dir`` (which must not exist yet) and return it.

    ``work_layers`` > 0 adds dense ``work_dim``-wide layers per instance whose result does not change the answer:
    a stand-in for an encoder's cost (and its better efficiency in batches), so benchmarks can show how close the
    server gets to in-process throughput when the model, not the server, is the bottleneck. ``text_ops`` lower-cases
    with a TensorFlow Text op, like the pipeline's tokenizer: such a model only loads where ``tensorflow_text`` is
    imported. ``hints=False`` leaves out the serving hints (``assets.extra/model_server.json``).
    """
    import tensorflow as tf

    class KeywordSentiment(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            keys = tf.constant(list(POSITIVE_WORDS) + list(NEGATIVE_WORDS))
            values = tf.constant([1.0] * len(POSITIVE_WORDS) + [-1.0] * len(NEGATIVE_WORDS))
            self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), 0.0)
            self.bias = tf.Variable(bias, dtype=tf.float32, name="bias")
            init = tf.random.stateless_normal([work_dim, work_dim], seed=[1, 2]) / float(work_dim) ** 0.5
            self.work = tf.Variable(init if work_layers else tf.zeros([1, 1]), name="work")

        def _score(self, text: Any) -> dict[str, Any]:
            if text_ops:
                import tensorflow_text as tf_text

                lowered = tf_text.case_fold_utf8(text)
            else:
                lowered = tf.strings.lower(text, encoding="utf-8")
            cleaned = tf.strings.regex_replace(lowered, r"[^\w']+", " ")
            words = tf.strings.split(cleaned)
            score = tf.reduce_sum(self.table.lookup(words), axis=1)
            if work_layers:
                h = tf.tile(score[:, None], [1, work_dim]) * 0.01
                for _ in tf.range(work_layers):
                    h = tf.tanh(tf.matmul(h, self.work))
                score += 0.0 * tf.reduce_mean(h, axis=1)  # costs like an encoder, answers like the toy model
            probability = tf.sigmoid(score + self.bias)
            label = tf.where(probability >= 0.5, tf.constant(POSITIVE), tf.constant(NEGATIVE))
            return {PROBABILITY_OUTPUT: probability, LABEL_OUTPUT: label}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=TEXT_INPUT)])  # type: ignore[untyped-decorator]
        def serve(self, text: Any) -> dict[str, Any]:
            return self._score(text)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])  # type: ignore[untyped-decorator]
        def serve_examples(self, examples: Any) -> dict[str, Any]:
            parsed = tf.io.parse_example(examples, {REVIEW_KEY: tf.io.FixedLenFeature([], tf.string)})
            return self._score(parsed[REVIEW_KEY])

    module = KeywordSentiment()
    # The tf.function argument names become the signature input names (text / examples).
    serve = module.serve.get_concrete_function()
    serve_examples = module.serve_examples.get_concrete_function()
    tf.saved_model.save(module, export_dir, signatures={SERVING_SIGNATURE: serve, EXAMPLES_SIGNATURE: serve_examples})
    if hints:
        write_serving_hints(export_dir, SERVING_HINTS)
    if warmup_texts:
        write_warmup_file(export_dir, warmup_texts)
    return export_dir


def write_warmup_file(export_dir: str, texts: Sequence[str]) -> str:
    """TF Serving's warm-up format: a TFRecord of PredictionLog, one predict request per text."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    path = os.path.join(export_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for text in texts:
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = SERVING_SIGNATURE
            request.inputs[TEXT_INPUT].CopyFrom(tf.make_tensor_proto([text.encode("utf-8")], dtype=tf.string))
            entry = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(entry.SerializeToString())
    return path


def publish_version(base_path: str, version: int, source_dir: str | None = None, bias: float = 0.0) -> str:
    """Publish ``base_path/<version>`` atomically (write a hidden temp dir, then rename), as the Pusher does.

    Copies ``source_dir`` when given (fast: no TensorFlow tracing), otherwise builds a new toy model.
    """
    os.makedirs(base_path, exist_ok=True)
    final = os.path.join(base_path, str(version))
    tmp = tempfile.mkdtemp(prefix=f".{version}.", suffix=".tmp", dir=base_path)
    os.rmdir(tmp)
    if source_dir is not None:
        shutil.copytree(source_dir, tmp)
    else:
        build_toy_model(tmp, bias=bias)
    os.rename(tmp, final)
    return final
