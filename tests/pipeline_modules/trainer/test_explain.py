"""Integrated gradients of the `explain` signature, on a tiny in-process BERT trained in seconds.

Completeness is checked on the probability (what the signature explains): the attributions' sum misses
probability - baseline_probability only by the midpoint Riemann sum's error, which shrinks as 1/steps^2; so the
test demands a small miss at many steps and a larger one at few (a wrong sum would not shrink).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from pipeline_modules import features
from pipeline_modules.config import config_for
from pipeline_modules.trainer import explain
from pipeline_modules.transform_module import encode_reviews
from tests.doubles.tiny_bert import build_tiny_model, export_tiny_model, tokenization_for, train_tiny_model

MAX_SEQ = 16  # budget 14: head 4 pieces (round(3.5)), tail 10


@pytest.fixture(scope="module")
def tokenization(tmp_path_factory: pytest.TempPathFactory) -> explain.Tokenization:
    return tokenization_for(str(tmp_path_factory.mktemp("vocab")), max_seq_length=MAX_SEQ)


@pytest.fixture(scope="module")
def word_pieces(tokenization: explain.Tokenization) -> explain.WordPieces:
    return explain.WordPieces(tokenization)


@pytest.fixture(scope="module")
def model(word_pieces: explain.WordPieces) -> tf.keras.Model:
    model = build_tiny_model()
    assert train_tiny_model(model, word_pieces) < 0.5  # it learned the two words
    return model


@pytest.fixture(scope="module")
def path(model: tf.keras.Model) -> explain.EncoderPath:
    return explain.EncoderPath(model)


def _explain(path: explain.EncoderPath, pieces: explain.WordPieces, texts: list[str], steps: int, **kw: str) -> dict:
    return {k: v.numpy() for k, v in explain.explain_text(path, pieces, tf.constant(texts), steps, **kw).items()}


def _miss(out: dict) -> np.ndarray:
    """|sum of attributions - (probability - baseline probability)| per review."""
    delta = out[features.PROBABILITY_OUTPUT] - out[explain.BASELINE_PROBABILITY_OUTPUT]
    return np.abs(out[explain.ATTRIBUTIONS_OUTPUT].sum(axis=1) - delta)


TEXTS = ["the film was wonderful", "it was awful", "this story is awful and the acting wonderful"]


@pytest.mark.parametrize("baseline", explain.BASELINES)
def test_attributions_sum_to_the_probability_change(path, word_pieces, baseline: str) -> None:
    coarse, fine = (_explain(path, word_pieces, TEXTS, steps, baseline=baseline) for steps in (2, 64))
    delta = fine[features.PROBABILITY_OUTPUT] - fine[explain.BASELINE_PROBABILITY_OUTPUT]
    assert np.all(np.abs(delta) > 0.05)  # there is something to explain
    # Measured: ~5e-5 at 64 steps (and 16x that at 16, the 1/steps^2 of the midpoint rule); 10x room for stacks.
    assert np.all(_miss(fine) < 5e-4), _miss(fine)
    assert np.all(_miss(coarse) > _miss(fine)), (_miss(coarse), _miss(fine))


def test_explained_probability_is_the_models(path, word_pieces, model) -> None:
    out = _explain(path, word_pieces, TEXTS, 4)
    logits = model(word_pieces(tf.constant(TEXTS)).encoder_inputs, training=False)[:, 0]
    np.testing.assert_allclose(out[features.PROBABILITY_OUTPUT], tf.sigmoid(logits).numpy(), atol=1e-6)


def test_obvious_words_carry_the_expected_sign(path, word_pieces) -> None:
    out = _explain(path, word_pieces, TEXTS, 16)
    words = [[w.decode() for w in row[:n]] for row, n in zip(out["words"], out["word_count"], strict=True)]
    for row, text in enumerate(TEXTS):
        attributions = dict(zip(words[row], out[explain.ATTRIBUTIONS_OUTPUT][row], strict=False))
        scores = out[explain.ATTRIBUTIONS_OUTPUT][row][: out["word_count"][row]]
        if "wonderful" in text:
            assert attributions["wonderful"] > 0 and attributions["wonderful"] == scores.max(), attributions
        if "awful" in text:
            assert attributions["awful"] < 0 and attributions["awful"] == scores.min(), attributions


def test_word_pieces_merge_back_into_the_input_words(path, word_pieces) -> None:
    text = "Unbelievable, the CAFE film! don't"
    alignment = word_pieces(tf.constant([text]))
    # un ##believ ##able , | the | caf ##e | film ! | don ' t  (after [CLS])
    assert alignment.kept_word.to_list() == [[0, 0, 0, 0, 1, 2, 2, 3, 3, 4, 4, 4]]
    out = explain.explain_text(path, word_pieces, tf.constant([text]), 8)
    assert [w.decode() for w in out["words"].numpy()[0]] == text.split()
    # Each word's attribution is the sum of its pieces' (positions 1.. after [CLS]).
    inputs = alignment.encoder_inputs
    baseline = path.word_vectors(
        explain.baseline_word_ids(
            inputs[features.INPUT_WORD_IDS],
            inputs[features.INPUT_MASK],
            word_pieces.pad_id,
            word_pieces.cls_id,
            word_pieces.sep_id,
        )
    )
    positions = explain.integrated_gradients(path, inputs, baseline, 8)[0].numpy()[0]
    assert positions[0] == 0 and positions[13] == 0  # [CLS] and [SEP] equal the baseline
    sums = [positions[1:5].sum(), positions[5], positions[6:8].sum(), positions[8:10].sum(), positions[10:13].sum()]
    np.testing.assert_allclose(out[explain.ATTRIBUTIONS_OUTPUT].numpy()[0], sums, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("vocab", ["tiny", "minilm"])
def test_the_pieces_are_transforms(word_pieces, tokenization, minilm_vocab_file: str, vocab: str) -> None:
    """Tokenizing word by word gives Transform's encoder inputs, truncation, HTML breaks and accents included."""
    if vocab == "minilm":
        tokenization = explain.Tokenization(minilm_vocab_file, True, MAX_SEQ, 0.25)
        word_pieces = explain.WordPieces(tokenization)
    texts = [
        "Unbelievable, the CAFE film! don't",
        "Café crème<br /><br />was wonderful!!! 日本語 a\u00a0b",
        " ".join(["the film was awful and wonderful"] * 6),
        "x",
    ]
    got = word_pieces(tf.constant(texts)).encoder_inputs
    want = encode_reviews(
        tf.constant(texts),
        vocab_file=tokenization.vocab_file,
        do_lower_case=True,
        max_seq_length=MAX_SEQ,
        head_fraction=0.25,
    )
    length = got[features.INPUT_WORD_IDS].shape[1]
    assert length == MAX_SEQ  # the long review fills the budget
    for key in features.ENCODER_INPUT_KEYS:
        np.testing.assert_array_equal(got[key].numpy(), want[key].numpy()[:, :length], err_msg=key)


def test_long_reviews_report_the_truncated_words(path, word_pieces) -> None:
    words = [f"{w}" for w in ("wonderful the film was " * 8).split()]  # 32 one-piece words, 14 fit
    out = _explain(path, word_pieces, [" ".join(words), "it was awful"], 32)
    assert list(out["word_count"]) == [32, 3]
    truncated = out[explain.TRUNCATED_OUTPUT][0]
    assert list(np.flatnonzero(~truncated)) == [0, 1, 2, 3, *range(22, 32)]  # head 4, tail 10
    assert np.all(out[explain.ATTRIBUTIONS_OUTPUT][0][truncated] == 0)
    assert not out[explain.TRUNCATED_OUTPUT][1].any()
    assert np.all(_miss(out) < 5e-3), _miss(out)


def test_empty_and_short_reviews_in_one_batch(path, word_pieces) -> None:
    out = _explain(path, word_pieces, ["", "wonderful", "   "], 4)
    assert list(out["word_count"]) == [0, 1, 0]
    assert out["words"].shape == (3, 1) and out["words"][1, 0] == b"wonderful"
    assert np.all(out[explain.ATTRIBUTIONS_OUTPUT][[0, 2]] == 0)


def test_a_tf_hub_layer_encoder_gets_no_explain_signature(tokenization, caplog) -> None:
    class Opaque(tf.keras.layers.Layer):
        def call(self, inputs):  # type: ignore[no-untyped-def]
            return tf.reshape(tf.cast(inputs[:, 0], tf.float32), [-1, 1])

    inputs = tf.keras.Input(shape=(None,), dtype=tf.int64, name=features.INPUT_WORD_IDS)
    logit = tf.keras.layers.Dense(1, name="logit")(Opaque(name="bert_encoder")(inputs))
    opaque = tf.keras.Model(inputs, logit)
    with caplog.at_level(logging.WARNING):
        assert explain.explain_signatures(opaque, tokenization, 4) == {}
    assert "no 'explain' signature" in caplog.text and "TF Hub KerasLayer" in caplog.text


def test_a_head_the_path_does_not_know_gets_no_explain_signature(model, tokenization, caplog) -> None:
    """The export-time check: a network whose output is not `logit`'s is refused, not explained wrongly."""
    doubled = tf.keras.Model(model.inputs, tf.keras.layers.Rescaling(2.0, name="twice")(model.outputs[0]))
    with caplog.at_level(logging.WARNING):
        assert explain.explain_signatures(doubled, tokenization, 4) == {}
    assert "off by" in caplog.text


def test_the_saved_signature_answers_as_in_process(model, tokenization, path, word_pieces, tmp_path: Path) -> None:
    export_dir = export_tiny_model(model, tokenization, str(tmp_path / "model"), steps=8)
    loaded = tf.saved_model.load(export_dir)
    texts = tf.constant(["the film was wonderful", "Unbelievable, awful!"])
    saved = loaded.signatures[explain.EXPLAIN_SIGNATURE](text=texts)
    served = loaded.signatures[features.SERVING_SIGNATURE](text=texts)
    eager = explain.explain_text(path, word_pieces, texts, 8)
    assert set(saved) == {*eager}
    for key, value in eager.items():
        if value.dtype == tf.string or value.dtype == tf.bool:
            np.testing.assert_array_equal(saved[key].numpy(), value.numpy(), err_msg=key)
        else:
            np.testing.assert_allclose(saved[key].numpy(), value.numpy(), rtol=1e-4, atol=1e-6, err_msg=key)
    np.testing.assert_allclose(saved[features.PROBABILITY_OUTPUT], served[features.PROBABILITY_OUTPUT], atol=1e-6)


def test_explain_steps_is_validated() -> None:
    assert config_for("smoke").explain_steps >= 1
    with pytest.raises(ValueError, match="explain_steps"):
        config_for("smoke", explain_steps=0)
