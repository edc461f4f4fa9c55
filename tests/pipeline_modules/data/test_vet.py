"""Vetting: exact read/kept/dropped counts and reasons for bad input, their log lines, and word counts."""

import logging
from collections import Counter

import pytest

from pipeline_modules.data import ImdbRecord, SyntheticArchiveInfo, read_imdb
from tests.pipeline_modules.data.shared_archive import EXPECTED_DROPS, N_PER_CLASS


def test_archive_with_bad_files_gives_exact_counts_and_reasons(archive: SyntheticArchiveInfo) -> None:
    assert archive.bad_files_per_split == EXPECTED_DROPS
    data = read_imdb(archive.path)
    report = data.report
    assert report.ignored == archive.ignored_files == 6  # README, imdb.vocab, 2 urls files, 2 unsup reviews
    for split in ("train", "eval"):
        split_report = report.splits[split]
        assert split_report.read == archive.read_per_split == 2 * N_PER_CLASS + 5
        assert split_report.kept == archive.kept_per_split == 2 * N_PER_CLASS
        assert dict(split_report.dropped) == EXPECTED_DROPS
        assert split_report.sampled is None
        records = data.splits[split]
        assert len(records) == 2 * N_PER_CLASS
        assert Counter(r.label for r in records) == {0: N_PER_CLASS, 1: N_PER_CLASS}
        assert len({r.id for r in records}) == len(records)
        for record in records:
            assert record.text.strip()
            assert record.rating in (range(7, 11) if record.label == 1 else range(1, 5))
            folder = "train" if split == "train" else "test"
            assert record.id.startswith(f"{folder}/{'pos' if record.label else 'neg'}/")
    assert report.splits["train"].log_line() == (
        f"IMDB train: read {2 * N_PER_CLASS + 5}, kept {2 * N_PER_CLASS}, dropped 5 "
        "(empty: 2, no_rating: 1, not_utf8: 1, rating_mismatch: 1)"
    )
    assert report.splits["train"].dropped_examples["not_utf8"] == [f"train/pos/{N_PER_CLASS + 1}_9.txt"]
    assert report.splits["eval"].dropped_examples["no_rating"] == [f"test/neg/{N_PER_CLASS + 1}.txt"]
    assert report.log_line().endswith("; ignored 6 other files")


def test_counts_and_drop_reasons_are_logged(archive: SyntheticArchiveInfo, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="pipeline_modules.data"):
        read_imdb(archive.path)
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("IMDB eval: read 45, kept 40, dropped 5 (empty: 2") for m in messages)
    assert any("dropped 1 review(s) as rating_mismatch, e.g. test/neg/22_9.txt" in m for m in messages)


def test_word_count_ignores_html_line_breaks() -> None:
    record = ImdbRecord(text="Great film.<br /><br />Loved it. <br/>Really", label=1, rating=9, id="x")
    assert record.word_count == 5
