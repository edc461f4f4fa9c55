"""The Keras BERT, converted from all-MiniLM-L6-v2: numerics against the NumPy reference and published similarities,
padding and dynamic length, and the fine-tuning interface (trainable weights, gradients, dropout)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub
import tf_keras

from pipeline_modules.encoder import ResolvedEncoder, layers
from tests.pipeline_modules.encoder.bert_reference import (
    ATOL,
    RTOL,
    SENTENCES,
    mean_pooled,
    numpy_bert,
    reference_args,
    run_encoder,
    tokenize,
)


@pytest.fixture(scope="module")
def frozen_layer(minilm: ResolvedEncoder) -> hub.KerasLayer:
    return hub.KerasLayer(minilm.path, trainable=False)


@pytest.fixture(scope="module")
def sentence_inputs(minilm: ResolvedEncoder) -> dict[str, np.ndarray]:
    return tokenize(minilm.vocab_file, minilm.do_lower_case, SENTENCES, seq_len=32)


# ----------------------------------------------------------------------------------------------------------------------
# Numerics


def test_matches_numpy_reference(frozen_layer, sentence_inputs, hf_weights, hf_config):
    got = run_encoder(frozen_layer, sentence_inputs)
    want = numpy_bert(hf_weights, hf_config, **reference_args(sentence_inputs))
    np.testing.assert_allclose(got["sequence_output"], want["sequence_output"], atol=ATOL, rtol=RTOL)
    np.testing.assert_allclose(got["pooled_output"], want["pooled_output"], atol=ATOL, rtol=RTOL)
    np.testing.assert_array_equal(got["default"], got["pooled_output"])
    assert len(got["encoder_outputs"]) == hf_config["num_hidden_layers"]
    for got_layer, want_layer in zip(got["encoder_outputs"], want["encoder_outputs"], strict=True):
        np.testing.assert_allclose(got_layer, want_layer, atol=ATOL, rtol=RTOL)
    # The reference is not trivially close to anything: outputs are O(1) and differ across sentences.
    assert np.abs(want["sequence_output"]).max() > 1.0
    assert np.abs(want["pooled_output"][0] - want["pooled_output"][2]).max() > 0.1


def test_published_sentence_similarities(frozen_layer, minilm):
    """External ground truth: the similarities published for sentence-transformers/all-MiniLM-L6-v2."""
    inputs = tokenize(minilm.vocab_file, minilm.do_lower_case, SENTENCES[:4], seq_len=16)
    emb = mean_pooled(run_encoder(frozen_layer, inputs)["sequence_output"], inputs["input_mask"])
    assert float(emb[0] @ emb[1]) == pytest.approx(0.755, abs=0.01)
    assert float(emb[2] @ emb[3]) == pytest.approx(0.894, abs=0.01)
    assert float(emb[0] @ emb[2]) < 0.3  # unrelated sentences are not similar


def test_tokenizer_uses_vocab_asset_like_uncased_bert(sentence_inputs, minilm):
    vocab = Path(minilm.vocab_file).read_text(encoding="utf-8").splitlines()
    ids = sentence_inputs["input_word_ids"][0]
    tokens = [vocab[i] for i in ids[sentence_inputs["input_mask"][0] == 1]]
    assert tokens == ["[CLS]", "a", "man", "is", "eating", "food", ".", "[SEP]"]
    accented = [vocab[i] for i in sentence_inputs["input_word_ids"][5] if i]
    assert "amelie" in accented and "tres" in accented  # lower-cased and accents stripped, as the HF tokenizer does


def test_padding_does_not_change_real_tokens(frozen_layer, minilm):
    short = tokenize(minilm.vocab_file, minilm.do_lower_case, SENTENCES, seq_len=32)
    long = tokenize(minilm.vocab_file, minilm.do_lower_case, SENTENCES, seq_len=128)
    np.testing.assert_array_equal(long["input_word_ids"][:, :32], short["input_word_ids"])
    assert long["input_mask"][:, 32:].sum() == 0
    out_short, out_long = run_encoder(frozen_layer, short), run_encoder(frozen_layer, long)
    real = short["input_mask"].astype(bool)
    np.testing.assert_allclose(
        out_long["sequence_output"][:, :32][real], out_short["sequence_output"][real], atol=1e-5, rtol=1e-5
    )
    np.testing.assert_allclose(out_long["pooled_output"], out_short["pooled_output"], atol=1e-5, rtol=1e-5)


def test_sequence_length_is_dynamic_up_to_max_positions(frozen_layer, hf_config):
    max_len = hf_config["max_position_embeddings"]
    for seq_len in (3, max_len):
        inputs = {
            "input_word_ids": np.full([1, seq_len], 1000, np.int32),
            "input_mask": np.ones([1, seq_len], np.int32),
            "input_type_ids": np.zeros([1, seq_len], np.int32),
        }
        assert run_encoder(frozen_layer, inputs)["sequence_output"].shape == (1, seq_len, hf_config["hidden_size"])
    too_long = {k: np.ones([1, max_len + 1], np.int32) for k in layers.INPUT_KEYS}
    # Caught by shape inference (ValueError) or, where shapes are unknown, by the converter's runtime assertion.
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="512|max_position_embeddings"):
        run_encoder(frozen_layer, too_long)


# ----------------------------------------------------------------------------------------------------------------------
# Fine-tuning interface


def test_trainable_weights_and_gradient_step(minilm, hf_weights, sentence_inputs):
    layer = hub.KerasLayer(minilm.path, trainable=True)
    inputs = {k: tf.constant(v) for k, v in sentence_inputs.items()}
    before = layer(inputs, training=False)["pooled_output"].numpy()
    float_tensors = {k: v for k, v in hf_weights.items() if v.dtype.kind == "f"}
    assert len(layer.trainable_weights) == len(float_tensors)
    assert sum(int(np.prod(w.shape)) for w in layer.trainable_weights) == sum(v.size for v in float_tensors.values())
    assert [w.name for w in layer.non_trainable_weights] == ["do_lower_case:0"]

    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(inputs, training=False)["pooled_output"][:, :8])
    grads = tape.gradient(loss, layer.trainable_weights)
    assert all(g is not None for g in grads)
    tf_keras.optimizers.SGD(learning_rate=0.05).apply_gradients(zip(grads, layer.trainable_weights, strict=True))
    after = layer(inputs, training=False)["pooled_output"].numpy()
    assert np.abs(after - before).max() > 1e-3
    assert after[:, :8].sum() < before[:, :8].sum()  # a descent step lowered the loss


def test_training_flag_controls_dropout(minilm, sentence_inputs):
    layer = hub.KerasLayer(minilm.path, trainable=True)  # hub passes `training` on only to trainable layers
    eval_1 = run_encoder(layer, sentence_inputs, training=False)["sequence_output"]
    eval_2 = run_encoder(layer, sentence_inputs, training=False)["sequence_output"]
    np.testing.assert_array_equal(eval_1, eval_2)
    train_1 = run_encoder(layer, sentence_inputs, training=True)["sequence_output"]
    train_2 = run_encoder(layer, sentence_inputs, training=True)["sequence_output"]
    assert np.abs(train_1 - eval_1).max() > 0.1
    assert np.abs(train_1 - train_2).max() > 0.1
