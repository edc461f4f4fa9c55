"""One source of truth for feature, output and signature names.

Ingestion, the schema, ``preprocessing_fn``, the model, its signatures, the Evaluator and the model server all read
these names from here, so renaming a feature is a one-line change.
"""

# Raw features, as ImdbExampleGen writes them into tf.Examples.
REVIEW_KEY = "review"  # bytes: the review text, UTF-8
LABEL_KEY = "label"  # int64: 1 = positive, 0 = negative
RATING_KEY = "rating"  # int64: the star rating from the file name (1-4 negative, 7-10 positive; 0 = unknown)
WORD_COUNT_KEY = "word_count"  # int64: whitespace-separated words
LENGTH_BUCKET_KEY = "length_bucket"  # bytes: word-count bucket, for Evaluator slices (TFMA slices on exact values)
LENGTH_BUCKETS = ((0, 128), (128, 256), (256, 512), (512, None))  # [low, high) in words


def length_bucket(word_count: int) -> str:
    """Bucket names sort in length order: "0000-0127", "0128-0255", "0256-0511", "0512+"."""
    for low, high in LENGTH_BUCKETS:
        if high is None or word_count < high:
            return f"{low:04d}+" if high is None else f"{low:04d}-{high - 1:04d}"
    raise AssertionError("unreachable: the last bucket is open")


# Transformed features, the encoder's inputs (TF Hub BERT names).
INPUT_WORD_IDS = "input_word_ids"
INPUT_MASK = "input_mask"
INPUT_TYPE_IDS = "input_type_ids"
ENCODER_INPUT_KEYS = (INPUT_WORD_IDS, INPUT_MASK, INPUT_TYPE_IDS)
TRANSFORMED_LABEL_KEY = "label"

# Serving contract (model server and pipeline agree on these).
SERVING_SIGNATURE = "serving_default"
EXAMPLES_SIGNATURE = "from_examples"
TEXT_INPUT = "text"
EXAMPLES_INPUT = "examples"
PROBABILITY_OUTPUT = "probability"
LABEL_OUTPUT = "label"
POSITIVE = "positive"
NEGATIVE = "negative"
# TF Serving's Classify API (tf.saved_model.signature_constants): serialized tf.Examples in `inputs`, a row of class
# labels in `classes` and their scores in `scores` ([POSITIVE, NEGATIVE] with [probability, 1 - probability]).
CLASSIFY_SIGNATURE = "classify"
CLASSIFY_INPUT = "inputs"
CLASSES_OUTPUT = "classes"
SCORES_OUTPUT = "scores"
CLASSIFY_METHOD_NAME = "tensorflow/serving/classify"
