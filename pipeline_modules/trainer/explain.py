"""Why a review scored as it did: integrated gradients over the word embeddings, summed back to the input's words.

The exported model's `explain` signature takes the same `text` as `serving_default` and answers, per review, its
whitespace-separated words, one attribution per word (in probability units), the probability they explain and the
probability of the baseline. Integrated gradients (Sundararajan et al., 2017) walks the word-embedding part of BERT's
input from a baseline (every review token replaced by `[PAD]`, or a zero vector; `[CLS]`, `[SEP]`, positions and
token types kept) to the review, and integrates the gradient of the probability along that path (midpoint Riemann
sum). Attributions therefore sum to `probability - baseline_probability`, up to the sum's error, which shrinks with
the square of `explain_steps`.

Word pieces are merged back by construction: each whitespace word of the text is tokenized on its own (BERT's
tokenization never crosses whitespace, so the pieces are exactly Transform's), and a word's attribution is the sum
of its pieces' (`un ##believ ##able` -> `unbelievable`; `film,` -> the pieces `film` and `,`). Words cut by the
head+tail truncation of long reviews are reported with `truncated` true and an attribution of 0 (the model never saw
them, or saw only some of their pieces).

This needs the encoder's layers in-process (the nested Keras model `bert_encoder` of
`pipeline_modules.encoder.layers.build_encoder`); a model whose encoder is a `hub.KerasLayer` is opaque, so it is
exported without an `explain` signature (`NotExplainable`, logged).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import tensorflow as tf
import tensorflow_text as tf_text

from model_server.hints import EXPLAIN_SIGNATURE, SignatureHints
from pipeline_modules import features
from pipeline_modules.settings import TrainerSettings
from pipeline_modules.transform_module import (
    HTML_LINE_BREAK,
    PAD_TOKEN,
    _head_and_tail,
    _read_vocabulary,
    _tokenizer,
)

logger = logging.getLogger(__name__)

WORDS_OUTPUT = "words"  # string [batch, max_words]: the review's whitespace-separated words, "" past word_count
ATTRIBUTIONS_OUTPUT = "attributions"  # float32 [batch, max_words]: each word's share of probability - baseline
WORD_COUNT_OUTPUT = "word_count"  # int32 [batch]: how many of `words` are the review's
TRUNCATED_OUTPUT = "truncated"  # bool [batch, max_words]: the word (or part of it) was cut from a long review
BASELINE_PROBABILITY_OUTPUT = "baseline_probability"  # float32 [batch]: the score of the all-[PAD] review
BASELINES = ("pad", "zero")
# Interpolation steps run in passes of about this many tokens (steps x reviews x length): the memory of one
# backward pass, not of all steps at once. 4096 tokens of a 6-layer, 384-wide encoder are about 1 GB.
TOKENS_PER_PASS = 4096
# An exported explanation must reproduce the served logit: the export-time check's tolerance (float32 rounding of
# a re-run of the same layers, far below any score difference that matters).
LOGIT_TOLERANCE = 1e-3
EXPLAIN_HINTS = SignatureHints(
    non_empty_text_inputs=(features.TEXT_INPUT,), input_features={features.TEXT_INPUT: features.REVIEW_KEY}
)


class NotExplainable(ValueError):
    """The model's layers cannot be walked from the word embeddings (e.g. a TF Hub `KerasLayer` encoder)."""


@dataclasses.dataclass(frozen=True)
class Tokenization:
    """What Transform tokenized with (`TransformSettings`' fields): the explanation must cut reviews the same way."""

    vocab_file: str
    do_lower_case: bool
    max_seq_length: int
    head_fraction: float


@dataclasses.dataclass(frozen=True)
class Alignment:
    """One batch of reviews as encoder inputs, and which word each kept word piece came from."""

    words: tf.RaggedTensor  # string [batch, (words)]
    encoder_inputs: dict[str, tf.Tensor]  # int64 [batch, longest review in the batch]
    kept_word: tf.RaggedTensor  # int64 [batch, (kept pieces)]: index into words.flat_values, in position order
    pieces_per_word: tf.Tensor  # int64 [total words]
    kept_per_word: tf.Tensor  # int64 [total words]


class WordPieces(tf.Module):
    """Review text to Transform's encoder inputs, remembering the word each piece belongs to.

    Transform tokenizes the whole text; here each whitespace word is tokenized alone and the pieces concatenated,
    which gives the same pieces (tested against `encode_reviews`) and the word of every piece for free.
    """

    def __init__(self, tokenization: Tokenization) -> None:
        super().__init__(name="explain_word_pieces")
        tokens = _read_vocabulary(tokenization.vocab_file)
        self.tokenizer, self.cls_id, self.sep_id = _tokenizer(tokens, tokenization.do_lower_case)
        self.pad_id = tokens.index(PAD_TOKEN)
        self.max_seq_length = int(tokenization.max_seq_length)
        self.budget = self.max_seq_length - 2  # room for [CLS] and [SEP], as in encode_reviews
        self.head = int(round(self.budget * tokenization.head_fraction))

    def __call__(self, text: tf.Tensor) -> Alignment:
        cleaned = tf.strings.regex_replace(text, HTML_LINE_BREAK, " ")
        words = tf.strings.split(cleaned)  # [batch, (words)]
        per_word = self.tokenizer.tokenize(words.values).merge_dims(-2, -1)  # [total words, (pieces)]
        pieces_per_review = tf.math.unsorted_segment_sum(per_word.row_lengths(), words.value_rowids(), words.nrows())
        pieces = tf.RaggedTensor.from_row_lengths(per_word.values, pieces_per_review)  # [batch, (pieces)]
        piece_word = per_word.value_rowids()  # piece (flat) -> word (flat)
        piece_index = pieces.with_values(tf.range(tf.size(pieces.values, out_type=tf.int64)))
        kept = _head_and_tail(piece_index, self.budget, self.head)  # flat piece indices, in position order
        kept_ids = kept.with_values(tf.gather(pieces.values, kept.values))
        word_ids, type_ids = tf_text.combine_segments(
            [kept_ids], start_of_sequence_id=self.cls_id, end_of_segment_id=self.sep_id
        )
        word_ids, mask = tf_text.pad_model_inputs(word_ids, max_seq_length=self.max_seq_length)
        type_ids, _ = tf_text.pad_model_inputs(type_ids, max_seq_length=self.max_seq_length)
        length = tf.maximum(tf.reduce_max(tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)), 2)
        kept_word = kept.with_values(tf.gather(piece_word, kept.values))
        total_words = tf.size(words.values, out_type=tf.int64)
        return Alignment(
            words=words,
            encoder_inputs={
                features.INPUT_WORD_IDS: tf.cast(word_ids[:, :length], tf.int64),
                features.INPUT_MASK: tf.cast(mask[:, :length], tf.int64),
                features.INPUT_TYPE_IDS: tf.cast(type_ids[:, :length], tf.int64),
            },
            kept_word=kept_word,
            pieces_per_word=per_word.row_lengths(),
            kept_per_word=tf.math.unsorted_segment_sum(tf.ones_like(kept_word.values), kept_word.values, total_words),
        )


class EncoderPath:
    """The trained model re-run from its word embeddings: embeddings' rest, attention bias, transformer layers, head.

    Reads the layers by their `build_encoder` names; `check` proves on real text that this path gives the model's
    own logit, so a changed network cannot export a wrong explanation.
    """

    def __init__(self, model: tf.keras.Model) -> None:
        try:
            encoder = model.get_layer("bert_encoder")
        except ValueError:
            raise NotExplainable("the model has no layer named 'bert_encoder'") from None
        if not isinstance(encoder, tf.keras.Model):
            raise NotExplainable(
                f"its encoder is a {type(encoder).__name__} (e.g. a TF Hub KerasLayer), whose embeddings cannot be "
                "interpolated; the in-process encoder (pipeline_modules.encoder.layers.build_encoder) can"
            )
        names = {layer.name for layer in encoder.layers}
        missing = sorted({"embeddings", "attention_bias"} - names)
        if missing:
            raise NotExplainable(f"its encoder lacks the layer(s) {', '.join(missing)}")
        self.embeddings = encoder.get_layer("embeddings")
        self.attention_bias = encoder.get_layer("attention_bias")
        count = sum(1 for name in names if name.startswith("transformer_layer_"))
        self.transformer_layers = [encoder.get_layer(f"transformer_layer_{i}") for i in range(count)]
        model_names = {layer.name for layer in model.layers}
        # Mean pooling under the mask, or the [CLS] pooler (PipelineConfig.pooling), as build_model wires the head.
        self.pooling: Any = (
            (lambda x, mask: model.get_layer("mean_pooling")(x, mask))
            if "mean_pooling" in model_names
            else (lambda x, mask: encoder.get_layer("pooler")(x))
        )
        if "logit" not in model_names:
            raise NotExplainable("the model has no 'logit' layer")
        self.logit = model.get_layer("logit")
        self.model = model

    def word_vectors(self, word_ids: tf.Tensor) -> tf.Tensor:
        return tf.gather(self.embeddings.word_embeddings, tf.cast(word_ids, tf.int32))

    def logit_from_word_vectors(self, word_vectors: tf.Tensor, type_ids: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
        """[batch] logits; the same arithmetic as the model at inference (dropout off), from the word vectors on."""
        emb = self.embeddings
        seq_len = tf.shape(word_vectors)[1]
        x = (
            word_vectors
            + tf.gather(emb.token_type_embeddings, tf.cast(type_ids, tf.int32))
            + emb.position_embeddings[tf.newaxis, :seq_len, :]
        )
        x = emb.layer_norm(x)
        bias = self.attention_bias(tf.cast(mask, tf.int32))
        for layer in self.transformer_layers:
            x = layer([x, bias], training=False)
        return tf.cast(self.logit(self.pooling(x, mask)), tf.float32)[:, 0]

    def check(self, word_pieces: WordPieces, texts: Sequence[str]) -> None:
        """Raise `NotExplainable` unless this path reproduces the model's logit on `texts` (eager, at export)."""
        inputs = word_pieces(tf.constant(list(texts))).encoder_inputs
        want = tf.cast(self.model(inputs, training=False), tf.float32)[:, 0]
        vectors = self.word_vectors(inputs[features.INPUT_WORD_IDS])
        got = self.logit_from_word_vectors(vectors, inputs[features.INPUT_TYPE_IDS], inputs[features.INPUT_MASK])
        worst = float(tf.reduce_max(tf.abs(want - got)))
        if not worst <= LOGIT_TOLERANCE:
            raise NotExplainable(f"re-running its layers from the embeddings is off by {worst:.2g} in the logit")


def baseline_word_ids(word_ids: tf.Tensor, mask: tf.Tensor, pad_id: int, cls_id: int, sep_id: int) -> tf.Tensor:
    """The review with every token but [CLS] and [SEP] replaced by [PAD] (padding is [PAD] already).

    Only the review's tokens differ from the input, so all of probability - baseline lands on the words.
    """
    special = tf.logical_or(tf.equal(word_ids, cls_id), tf.equal(word_ids, sep_id))
    keep = tf.logical_or(special, tf.equal(mask, 0))
    return tf.where(keep, word_ids, tf.cast(pad_id, word_ids.dtype))


def integrated_gradients(
    path: EncoderPath,
    encoder_inputs: dict[str, tf.Tensor],
    baseline_vectors: tf.Tensor,
    steps: int,
    tokens_per_pass: int = TOKENS_PER_PASS,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(attributions [batch, seq], probability [batch], baseline probability [batch]) of sigmoid(logit).

    The midpoint Riemann sum of the gradient at alphas (i + 0.5) / steps, times (input - baseline), summed over the
    hidden dimension; padding positions get 0.
    """
    word_ids = encoder_inputs[features.INPUT_WORD_IDS]
    type_ids = encoder_inputs[features.INPUT_TYPE_IDS]
    mask = encoder_inputs[features.INPUT_MASK]
    inputs = path.word_vectors(word_ids)
    delta = inputs - baseline_vectors
    batch, seq_len, hidden = tf.shape(inputs)[0], tf.shape(inputs)[1], tf.shape(inputs)[2]
    alphas = (tf.range(steps, dtype=tf.float32) + 0.5) / float(steps)
    per_pass = tf.clip_by_value(tokens_per_pass // tf.maximum(batch * seq_len, 1), 1, steps)
    total = tf.zeros_like(inputs)
    for start in tf.range(0, steps, per_pass):
        alpha = alphas[start : start + per_pass]
        count = tf.shape(alpha)[0]
        points = baseline_vectors[tf.newaxis] + alpha[:, tf.newaxis, tf.newaxis, tf.newaxis] * delta[tf.newaxis]
        points = tf.reshape(points, [count * batch, seq_len, hidden])
        with tf.GradientTape() as tape:
            tape.watch(points)
            probability = tf.sigmoid(
                path.logit_from_word_vectors(points, tf.tile(type_ids, [count, 1]), tf.tile(mask, [count, 1]))
            )
        grads = tape.gradient(probability, points)
        total += tf.reduce_sum(tf.reshape(grads, [count, batch, seq_len, hidden]), axis=0)
    attributions = tf.reduce_sum(delta * total, axis=-1) / float(steps) * tf.cast(mask, tf.float32)
    probability = tf.sigmoid(tf.cast(path.model(encoder_inputs, training=False), tf.float32)[:, 0])
    baseline = tf.sigmoid(path.logit_from_word_vectors(baseline_vectors, type_ids, mask))
    return attributions, probability, baseline


def word_attributions(alignment: Alignment, attributions: tf.Tensor) -> dict[str, tf.Tensor]:
    """Position attributions [batch, seq] summed per word: the `explain` signature's word outputs."""
    kept = alignment.kept_word
    rows = kept.value_rowids()
    positions = tf.range(tf.size(kept.values, out_type=tf.int64)) - tf.gather(kept.row_starts(), rows) + 1  # [CLS]
    per_piece = tf.gather_nd(attributions, tf.stack([rows, positions], axis=1))
    words = alignment.words
    total_words = tf.size(words.values, out_type=tf.int64)
    per_word = tf.math.unsorted_segment_sum(per_piece, kept.values, total_words)
    truncated = alignment.kept_per_word < alignment.pieces_per_word
    return {
        WORDS_OUTPUT: words.to_tensor(default_value=""),
        ATTRIBUTIONS_OUTPUT: words.with_values(per_word).to_tensor(default_value=0.0),
        WORD_COUNT_OUTPUT: tf.cast(words.row_lengths(), tf.int32),
        TRUNCATED_OUTPUT: words.with_values(truncated).to_tensor(default_value=False),
    }


def explain_text(
    path: EncoderPath, word_pieces: WordPieces, text: tf.Tensor, steps: int, baseline: str = "pad"
) -> dict[str, tf.Tensor]:
    """Every output of the `explain` signature for a [batch] of review strings."""
    alignment = word_pieces(text)
    inputs = alignment.encoder_inputs
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, got {baseline!r}")
    word_ids = inputs[features.INPUT_WORD_IDS]
    ids = baseline_word_ids(
        word_ids, inputs[features.INPUT_MASK], word_pieces.pad_id, word_pieces.cls_id, word_pieces.sep_id
    )
    baseline_vectors = path.word_vectors(ids)
    if baseline == "zero":  # zero vectors where the review's tokens were; [CLS], [SEP] and padding as they are
        baseline_vectors = tf.where(tf.equal(ids, word_ids)[:, :, tf.newaxis], baseline_vectors, 0.0)
    attributions, probability, baseline_probability = integrated_gradients(path, inputs, baseline_vectors, steps)
    return {
        **word_attributions(alignment, attributions),
        features.PROBABILITY_OUTPUT: probability,
        BASELINE_PROBABILITY_OUTPUT: baseline_probability,
    }


# Export-time probe: short, punctuated, accented, HTML breaks, and longer than any max_seq_length (head + tail).
_PROBE_TEXTS = (
    "A wonderful film.",
    "Awful, awful acting<br /><br />and a plot I couldn't follow... Café crème!",
    " ".join(f"word{i} and more" for i in range(200)),
)


def explain_signatures(model: tf.keras.Model, tokenization: Tokenization, steps: int) -> dict[str, Any]:
    """`{"explain": concrete function}` for the export, or `{}` (logged) when the model cannot be explained."""
    try:
        path = EncoderPath(model)
        word_pieces = WordPieces(tokenization)
        path.check(word_pieces, _PROBE_TEXTS)
    except NotExplainable as exc:
        logger.warning("Export: no %r signature: %s", EXPLAIN_SIGNATURE, exc)
        return {}
    model.explain_word_pieces = word_pieces  # tracked, so its vocabulary table is saved with the model

    def explain(text: tf.Tensor) -> dict[str, tf.Tensor]:
        return explain_text(path, word_pieces, text, steps)

    fn = tf.function(explain, input_signature=[tf.TensorSpec([None], tf.string, name=features.TEXT_INPUT)])
    logger.info("Export: %r signature, integrated gradients in %d steps", EXPLAIN_SIGNATURE, steps)
    return {EXPLAIN_SIGNATURE: fn.get_concrete_function()}


def explain_signatures_for(model: tf.keras.Model, settings: TrainerSettings, max_seq_length: int) -> dict[str, Any]:
    """`explain_signatures` with the Trainer's settings and Transform's padded length (the export's hook)."""
    tokenization = Tokenization(settings.vocab_file, settings.do_lower_case, max_seq_length, settings.head_fraction)
    return explain_signatures(model, tokenization, settings.explain_steps)


__all__ = [
    "ATTRIBUTIONS_OUTPUT",
    "BASELINES",
    "BASELINE_PROBABILITY_OUTPUT",
    "EXPLAIN_HINTS",
    "EXPLAIN_SIGNATURE",
    "TRUNCATED_OUTPUT",
    "WORDS_OUTPUT",
    "WORD_COUNT_OUTPUT",
    "Alignment",
    "EncoderPath",
    "NotExplainable",
    "Tokenization",
    "WordPieces",
    "baseline_word_ids",
    "explain_signatures",
    "explain_signatures_for",
    "explain_text",
    "integrated_gradients",
    "word_attributions",
]
