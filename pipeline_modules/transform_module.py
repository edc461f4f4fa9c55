"""TFX Transform module: raw review text to BERT encoder inputs.

Transform runs this once over the data and also bakes it into the exported model, so the tokenization that trained
the model is byte for byte the one that serves it. The vocabulary and casing come from the encoder itself (its
`vocab_file` asset and `do_lower_case` flag, resolved before the pipeline starts and passed in `custom_config` as
`pipeline_modules.settings.TransformSettings`). The pipeline names `preprocessing_fn` by its import path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf
import tensorflow_text as tf_text

from model_server.wordpiece import vocabulary_tokens
from pipeline_modules import features
from pipeline_modules.settings import TransformSettings

CLS_TOKEN = "[CLS]"
SEP_TOKEN = "[SEP]"
PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"

# HTML line breaks are the only markup in IMDB reviews (`<br /><br />` between paragraphs).
HTML_LINE_BREAK = r"(?i)<\s*br\s*/?\s*>"


def _read_vocabulary(vocab_file: str) -> list[str]:
    """The encoder's vocabulary (any TensorFlow file system), parsed as the model server's fast tokenizer parses it."""
    with tf.io.gfile.GFile(vocab_file, "r") as handle:
        return vocabulary_tokens(handle, vocab_file)


def _tokenizer(tokens: list[str], lower_case: bool) -> tuple[tf_text.BertTokenizer, int, int]:
    """A WordPiece tokenizer whose table lives in the graph, so the transform graph carries its own vocabulary."""
    table = tf.lookup.StaticVocabularyTable(
        tf.lookup.KeyValueTensorInitializer(
            keys=tf.constant(tokens, dtype=tf.string),
            values=tf.range(len(tokens), dtype=tf.int64),
            key_dtype=tf.string,
            value_dtype=tf.int64,
        ),
        num_oov_buckets=1,
    )
    tokenizer = tf_text.BertTokenizer(table, token_out_type=tf.int64, lower_case=lower_case, unknown_token=UNK_TOKEN)
    return tokenizer, tokens.index(CLS_TOKEN), tokens.index(SEP_TOKEN)


def _head_and_tail(token_ids: tf.RaggedTensor, budget: int, head: int) -> tf.RaggedTensor:
    """Keep at most `budget` tokens per row: the first `head` and the last `budget - head` of longer rows."""
    lengths = token_ids.row_lengths()
    starts = token_ids.row_starts()
    head_len = tf.minimum(lengths, head)
    tail_len = tf.minimum(lengths - head_len, budget - head)
    head_idx = tf.ragged.range(starts, starts + head_len)
    tail_idx = tf.ragged.range(starts + lengths - tail_len, starts + lengths)
    index = tf.concat([head_idx, tail_idx], axis=1)
    return tf.RaggedTensor.from_row_lengths(tf.gather(token_ids.values, index.values), index.row_lengths())


def _dense_vector(tensor: tf.Tensor | tf.SparseTensor, default: Any) -> tf.Tensor:
    """[batch] from a [batch] / [batch, 1] dense or a sparse feature, whichever the schema produced."""
    if isinstance(tensor, tf.SparseTensor):
        tensor = tf.sparse.to_dense(tf.sparse.reset_shape(tensor, [tensor.dense_shape[0], 1]), default_value=default)
    return tf.reshape(tensor, [-1])


def encode_reviews(
    reviews: tf.Tensor,
    *,
    vocab_file: str,
    do_lower_case: bool,
    max_seq_length: int,
    head_fraction: float,
) -> dict[str, tf.Tensor]:
    """Review strings [batch] to int64 [batch, max_seq_length] encoder inputs (used by `preprocessing_fn`)."""
    tokenizer, cls_id, sep_id = _tokenizer(_read_vocabulary(vocab_file), do_lower_case)
    text = tf.strings.regex_replace(reviews, HTML_LINE_BREAK, " ")
    token_ids = tokenizer.tokenize(text).merge_dims(-2, -1)
    budget = max_seq_length - 2  # room for [CLS] and [SEP]
    head = int(round(budget * head_fraction))
    trimmed = _head_and_tail(token_ids, budget, head)
    word_ids, type_ids = tf_text.combine_segments([trimmed], start_of_sequence_id=cls_id, end_of_segment_id=sep_id)
    word_ids, mask = tf_text.pad_model_inputs(word_ids, max_seq_length=max_seq_length)
    type_ids, _ = tf_text.pad_model_inputs(type_ids, max_seq_length=max_seq_length)
    return {
        features.INPUT_WORD_IDS: tf.cast(word_ids, tf.int64),
        features.INPUT_MASK: tf.cast(mask, tf.int64),
        features.INPUT_TYPE_IDS: tf.cast(type_ids, tf.int64),
    }


# TFX Transform calls this.
def preprocessing_fn(inputs: Mapping[str, Any], custom_config: Mapping[str, Any]) -> dict[str, tf.Tensor]:
    """Tokenize reviews for BERT; pass the label through when present (it is absent at serving time)."""
    settings = TransformSettings.from_custom_config(custom_config)
    outputs = encode_reviews(
        _dense_vector(inputs[features.REVIEW_KEY], b""),
        vocab_file=settings.vocab_file,
        do_lower_case=settings.do_lower_case,
        max_seq_length=settings.max_seq_length,
        head_fraction=settings.head_fraction,
    )
    if features.LABEL_KEY in inputs:
        outputs[features.TRANSFORMED_LABEL_KEY] = tf.cast(_dense_vector(inputs[features.LABEL_KEY], -1), tf.int64)
    return outputs
