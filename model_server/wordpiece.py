"""BERT WordPiece tokenization without TensorFlow, for the ONNX engine's printable-ASCII texts.

The SavedModel's own tokenize signature (TF Text's ``BertTokenizer``) costs about a millisecond per call, as much as
a third of what ONNX Runtime needs for the whole encoder; Hugging Face ``tokenizers`` (Rust) does the same work in
tens of microseconds. The two agree on printable ASCII (the same whitespace and punctuation split, lower-casing and
greedy longest-match word pieces, a word over 100 characters becoming ``[UNK]``); beyond ASCII they differ in corner
cases (Unicode normalization, control and CJK characters), so other texts stay with TensorFlow. The engine verifies
this tokenizer against the tokenize signature at load and does not use it when they disagree.

The layout is the exporter's (``pipeline_modules/transform_module.py``): replacements, ``[CLS]`` + the first
``head_tokens`` and last ``max_seq_length - 2 - head_tokens`` word pieces + ``[SEP]``, mask 1 and type id 0 on every
token; rows are padded to the longest row of the call, not to ``max_seq_length`` (the graph takes any length).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from model_server.onnx_manifest import WordPieceSpec

CLS_TOKEN, SEP_TOKEN, PAD_TOKEN, UNK_TOKEN = "[CLS]", "[SEP]", "[PAD]", "[UNK]"
MAX_CHARS_PER_WORD = 100  # TF Text's WordpieceTokenizer max_bytes_per_word and HF's max_input_chars_per_word
WORD_IDS, MASK, TYPE_IDS = "input_word_ids", "input_mask", "input_type_ids"  # TF Hub's BERT input names
_NOT_PRINTABLE_ASCII = re.compile(rb"[^\t\n\r\x20-\x7e]")


def vocabulary_tokens(lines: Iterable[str], source: str) -> list[str]:
    """A BERT vocabulary's tokens: one a line, ids by line number, trailing blank lines dropped; the special tokens
    must be there. The exporter's Transform reads its vocabulary with this too, so both tokenizers count alike."""
    tokens = [line.rstrip("\n").rstrip("\r") for line in lines]
    while tokens and not tokens[-1]:
        tokens.pop()
    missing = [t for t in (CLS_TOKEN, SEP_TOKEN, PAD_TOKEN, UNK_TOKEN) if t not in tokens]
    if missing:
        raise ValueError(f"Vocabulary {source} lacks the special token(s) {missing}; is it a BERT vocab.txt?")
    return tokens


def read_vocabulary(path: str) -> list[str]:
    """A version's vocabulary file on local disk (:func:`vocabulary_tokens`)."""
    with open(path, encoding="utf-8") as f:
        return vocabulary_tokens(f, path)


class FastWordPiece:
    """The manifest's ``wordpiece`` tokenization with Hugging Face ``tokenizers``; raises ImportError or ValueError
    when it cannot be built (no ``tokenizers``, an unreadable vocabulary, an invalid replacement pattern)."""

    def __init__(self, spec: WordPieceSpec, version_dir: str):
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

        tokens = read_vocabulary(os.path.join(version_dir, spec.vocab))
        vocab: dict[str, int] = {}
        for i, token in enumerate(tokens):
            vocab.setdefault(token, i)  # a duplicate line: TF's table would refuse it; the first id is as good
        self.spec = spec
        self.cls_id, self.sep_id = vocab[CLS_TOKEN], vocab[SEP_TOKEN]
        self.pad_id = vocab[PAD_TOKEN]
        self._budget = spec.max_seq_length - 2
        self._head = spec.head_tokens
        try:
            self._replacements = [(re.compile(p), r) for p, r in spec.replacements]
        except re.error as exc:
            raise ValueError(f"wordpiece.replacements: {exc}") from None
        tokenizer = Tokenizer(models.WordPiece(vocab, unk_token=UNK_TOKEN, max_input_chars_per_word=MAX_CHARS_PER_WORD))
        tokenizer.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=spec.lower_case, lowercase=spec.lower_case
        )
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        self._tokenizer = tokenizer

    def prepare(self, value: Any) -> str | None:
        """The text after the replacements when this tokenizer takes it (printable ASCII bytes), else ``None``."""
        if not isinstance(value, bytes) or _NOT_PRINTABLE_ASCII.search(value):
            return None
        text = value.decode("ascii")
        for pattern, replacement in self._replacements:
            text = pattern.sub(replacement, text)
        return text if text.isascii() else None

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's token ids: ``[CLS]``, its head-and-tail-truncated word pieces, ``[SEP]``."""
        if len(texts) == 1:
            pieces = [self._tokenizer.encode(texts[0], add_special_tokens=False).ids]
        else:
            pieces = [e.ids for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=False)]
        return [[self.cls_id, *self._head_and_tail(p), self.sep_id] for p in pieces]

    def _head_and_tail(self, ids: list[int]) -> list[int]:
        if len(ids) <= self._budget:
            return ids
        tail = self._budget - self._head
        return ids[: self._head] + (ids[len(ids) - tail :] if tail else [])


def pad_rows(rows: Sequence[Sequence[int]], pad_id: int, width: int | None = None) -> dict[str, np.ndarray]:
    """int64 ``[len(rows), width]`` word ids, mask and type ids (``width``: the longest row when not given)."""
    width = max((len(r) for r in rows), default=0) if width is None else width
    if rows and all(len(r) == width for r in rows):  # batch 1, the latency path: no padding to write
        word_ids = np.array(rows, dtype=np.int64).reshape(len(rows), width)
        shape = word_ids.shape
        return {WORD_IDS: word_ids, MASK: np.ones(shape, np.int64), TYPE_IDS: np.zeros(shape, np.int64)}
    word_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        word_ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return {WORD_IDS: word_ids, MASK: mask, TYPE_IDS: np.zeros((len(rows), width), dtype=np.int64)}
