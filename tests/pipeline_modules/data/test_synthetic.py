"""The synthetic archive: deterministic bytes, optional bad files, IMDB-like and learnable-but-noisy reviews."""

import gzip
import math
from collections import Counter
from pathlib import Path

from pipeline_modules.data import read_imdb, synthetic, write_synthetic_archive


def test_synthetic_archive_is_deterministic(tmp_path: Path) -> None:
    # No wall-time bound: it failed CI-style runs with both suites sharing two cores (the guide: never assert one).
    first = write_synthetic_archive(tmp_path / "a" / "aclImdb_v1.tar.gz", n_per_class=200, seed=1)
    second = write_synthetic_archive(tmp_path / "b" / "aclImdb_v1.tar.gz", n_per_class=200, seed=1)
    third = write_synthetic_archive(tmp_path / "c" / "aclImdb_v1.tar.gz", n_per_class=200, seed=2)
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.path.read_bytes() != third.path.read_bytes()
    with gzip.open(first.path) as raw:
        assert raw.read(1)  # a real gzip stream, as downloaded


def test_synthetic_archive_without_bad_files(tmp_path: Path) -> None:
    info = write_synthetic_archive(tmp_path / "aclImdb_v1.tar.gz", n_per_class=7, seed=0, include_bad_files=False)
    assert info.bad_files_per_split == {}
    data = read_imdb(info.path)
    for split in ("train", "eval"):
        assert (data.report.splits[split].read, data.report.splits[split].kept) == (14, 14)


def test_synthetic_reviews_look_like_imdb(tmp_path: Path) -> None:
    info = write_synthetic_archive(tmp_path / "aclImdb_v1.tar.gz", n_per_class=100, seed=3, max_words=80)
    records = read_imdb(info.path).splits["train"]
    counts = [r.word_count for r in records]
    assert max(counts) <= 80
    assert min(counts) < 30 < 50 < max(counts)  # varied lengths
    assert sum("<br /><br />" in r.text for r in records) > len(records) / 4
    assert sum(any(ord(c) > 127 for c in r.text) for r in records) > len(records) / 4


def test_synthetic_reviews_are_learnable_but_noisy(tmp_path: Path) -> None:
    """A word-count naive Bayes trained on the train split must beat chance clearly on eval, but not be perfect."""
    info = write_synthetic_archive(tmp_path / "aclImdb_v1.tar.gz", n_per_class=150, seed=4)
    data = read_imdb(info.path)

    def words(text: str) -> list[str]:
        return text.lower().replace("<br />", " ").replace(".", " ").replace(",", " ").replace("!", " ").split()

    counts = {0: Counter[str](), 1: Counter[str]()}
    for record in data.splits["train"]:
        counts[record.label].update(words(record.text))
    vocabulary = set(counts[0]) | set(counts[1])
    totals = {label: sum(c.values()) + len(vocabulary) for label, c in counts.items()}

    def log_odds(text: str) -> float:
        return sum(
            math.log((counts[1][w] + 1) / totals[1]) - math.log((counts[0][w] + 1) / totals[0]) for w in words(text)
        )

    eval_records = data.splits["eval"]
    accuracy = sum((log_odds(r.text) > 0) == (r.label == 1) for r in eval_records) / len(eval_records)
    assert accuracy > 0.85
    noisy = sum(any(w in synthetic._NEGATIVE for w in words(r.text)) for r in data.splits["train"] if r.label == 1)
    assert noisy > 10  # positives also use negative words, so one keyword cannot decide
