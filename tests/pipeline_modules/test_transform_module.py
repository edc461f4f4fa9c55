"""Tokenization in `preprocessing_fn` against known WordPiece output and an independent tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from pipeline_modules import features
from pipeline_modules.transform_module import encode_reviews, preprocessing_fn

SENTENCES = [
    "Hello, World!",
    "This movie was GREAT.<br /><br />I'd watch it again!!",
    "Café naïve résumé: a jalapeño-flavoured crème brûlée of a film.",
    "Don't waste 2 hours on this $5 film... 1/10",
    "The acting was unaffable, the plot incomprehensible, and the score — magnificent.",
    "I (honestly) can't believe they made a sequel; it's the worst thing since 'Batman & Robin'.",
    "東京 was shown in the film, along with emojis 🎬🍿 and tabs\tand\nnewlines.",
]


def _encode(texts: list[str], max_seq_length: int = 64, head_fraction: float = 0.25, vocab_file: str = "") -> dict:
    outputs = encode_reviews(
        tf.constant(texts),
        vocab_file=vocab_file,
        do_lower_case=True,
        max_seq_length=max_seq_length,
        head_fraction=head_fraction,
    )
    return {k: v.numpy() for k, v in outputs.items()}


def _unpadded(row_ids: np.ndarray, row_mask: np.ndarray) -> list[int]:
    return row_ids[row_mask.astype(bool)].tolist()


def test_known_wordpiece_output(minilm_vocab_file: str) -> None:
    out = _encode(["Hello, World!", "unaffable"], max_seq_length=8, vocab_file=minilm_vocab_file)
    # bert-base-uncased / all-MiniLM-L6-v2 ids: [CLS] hello , world ! [SEP] and [CLS] una ##ffa ##ble [SEP]
    assert out[features.INPUT_WORD_IDS].tolist() == [
        [101, 7592, 1010, 2088, 999, 102, 0, 0],
        [101, 14477, 20961, 3468, 102, 0, 0, 0],
    ]
    assert out[features.INPUT_MASK].tolist() == [[1, 1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 0, 0, 0]]
    assert out[features.INPUT_TYPE_IDS].tolist() == [[0] * 8, [0] * 8]
    assert all(v.dtype == np.int64 for v in out.values())


def test_matches_reference_tokenizer(minilm_vocab_file: str, minilm_checkpoint_dir) -> None:
    """Hugging Face's own (Rust) WordPiece tokenizer, from the checkpoint's tokenizer.json, is the reference."""
    tokenizers = pytest.importorskip("tokenizers")
    reference = tokenizers.Tokenizer.from_file(str(minilm_checkpoint_dir / "tokenizer.json"))
    reference.no_padding()
    reference.no_truncation()
    out = _encode(SENTENCES, max_seq_length=128, vocab_file=minilm_vocab_file)
    for i, sentence in enumerate(SENTENCES):
        # Transform turns HTML line breaks into spaces before tokenizing; give the reference the same text.
        expected = reference.encode(sentence.replace("<br />", " ")).ids
        assert _unpadded(out[features.INPUT_WORD_IDS][i], out[features.INPUT_MASK][i]) == expected, sentence


def test_html_line_breaks_removed(minilm_vocab_file: str) -> None:
    plain = _encode(["great film. loved it"], vocab_file=minilm_vocab_file)
    html = _encode(["great film.<br /><br />loved it", "great film.<BR>loved it"], vocab_file=minilm_vocab_file)
    for row in html[features.INPUT_WORD_IDS]:
        assert row.tolist() == plain[features.INPUT_WORD_IDS][0].tolist()


def _single_token_words(vocab_file: str, count: int) -> tuple[list[str], list[int]]:
    with open(vocab_file, encoding="utf-8") as handle:
        vocab = [line.rstrip("\n") for line in handle]
    chosen = [(w, i) for i, w in enumerate(vocab) if i > 2000 and w.isascii() and w.isalpha() and w.islower()]
    chosen = chosen[:count]
    return [w for w, _ in chosen], [i for _, i in chosen]


@pytest.mark.parametrize(
    ("head_fraction", "head"),
    [(0.25, 4), (0.0, 0), (1.0, 14), (0.5, 7)],
)
def test_head_and_tail_truncation(minilm_vocab_file: str, head_fraction: float, head: int) -> None:
    words, ids = _single_token_words(minilm_vocab_file, 40)
    out = _encode([" ".join(words)], max_seq_length=16, head_fraction=head_fraction, vocab_file=minilm_vocab_file)
    budget = 16 - 2
    expected = [101, *ids[:head], *ids[len(ids) - (budget - head) :], 102]
    assert out[features.INPUT_WORD_IDS][0].tolist() == expected
    assert out[features.INPUT_MASK][0].tolist() == [1] * 16


def test_short_reviews_are_not_truncated_and_padded(minilm_vocab_file: str) -> None:
    words, ids = _single_token_words(minilm_vocab_file, 10)
    out = _encode([" ".join(words), ""], max_seq_length=16, vocab_file=minilm_vocab_file)
    assert out[features.INPUT_WORD_IDS][0].tolist() == [101, *ids, 102, 0, 0, 0, 0]
    assert out[features.INPUT_MASK][0].tolist() == [1] * 12 + [0] * 4
    assert out[features.INPUT_WORD_IDS][1].tolist() == [101, 102] + [0] * 14


def test_preprocessing_fn_passes_label_and_accepts_serving_inputs(minilm_vocab_file: str) -> None:
    config = {"vocab_file": minilm_vocab_file, "do_lower_case": True, "max_seq_length": 12, "head_fraction": 0.25}
    training = preprocessing_fn(
        {
            features.REVIEW_KEY: tf.constant([[b"good"], [b"bad"]]),
            features.LABEL_KEY: tf.constant([[1], [0]], tf.int64),
        },
        config,
    )
    assert training[features.TRANSFORMED_LABEL_KEY].numpy().tolist() == [1, 0]
    assert training[features.INPUT_WORD_IDS].shape == (2, 12)
    serving = preprocessing_fn({features.REVIEW_KEY: tf.constant([b"good", b"bad"])}, config)
    assert features.TRANSFORMED_LABEL_KEY not in serving
    np.testing.assert_array_equal(serving[features.INPUT_WORD_IDS], training[features.INPUT_WORD_IDS])


def test_vocabulary_without_special_tokens_is_rejected(tmp_path) -> None:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("hello\nworld\n", encoding="utf-8")
    with pytest.raises(ValueError, match="special token"):
        _encode(["hello"], vocab_file=str(vocab))
