"""The scoring loop: a row the model refuses costs that row only, a failure part-way writes nothing, memory stays
bounded on a file many times the chunk, and the progress bar reports rows and rows per second."""

from __future__ import annotations

import io
import json
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

import pytest

from pipeline_modules.scoring import ScoreOptions, score_file


class FakeScorer:
    """Pure Python (so memory measurements see only the scoring loop): refuses texts containing `poison`, and
    stops the run (a non-row error) at a text containing `fatal`."""

    description = "fake"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def score(self, texts: Sequence[str]) -> tuple[list[float], list[str]]:
        self.calls.append(len(texts))
        if any("fatal" in t for t in texts):
            raise RuntimeError("the server went away")
        if any("poison" in t for t in texts):
            raise ValueError("this input cannot be scored")
        return [0.25] * len(texts), ["negative"] * len(texts)

    def is_row_error(self, error: BaseException) -> bool:
        return isinstance(error, ValueError)

    def close(self) -> None:
        pass


def _write_jsonl(path: Path, texts: Sequence[str]) -> None:
    path.write_text("".join(json.dumps({"review": t}) + "\n" for t in texts), encoding="utf-8")


def test_a_row_the_model_refuses_is_rejected_alone(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    _write_jsonl(source, ["fine one", "fine two", "poison pill", "fine three", "fine four"])
    scorer = FakeScorer()
    summary = score_file(source, scorer, options=ScoreOptions(batch_size=4, concurrency=1))
    assert [json.loads(line)["review"] for line in (tmp_path / "in.scored.jsonl").read_text().splitlines()] == [
        "fine one", "fine two", "fine three", "fine four",
    ]  # fmt: skip
    (reject,) = map(json.loads, (tmp_path / "in.scored.rejects.jsonl").read_text().splitlines())
    assert reject == {"row": 3, "reason": "model_error", "message": "this input cannot be scored"}
    assert scorer.calls == [4, 1, 1, 1, 1, 1]  # the failing batch once, then each of its texts alone; then row 5
    assert (summary.scored, summary.rejected) == (4, 1)


def test_a_failure_part_way_leaves_no_output_and_no_partial_file(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    _write_jsonl(source, ["fine"] * 10 + ["fatal"] + ["fine"] * 10)
    with pytest.raises(RuntimeError, match="went away"):
        score_file(source, FakeScorer(), tmp_path / "out.jsonl", options=ScoreOptions(chunk_size=4, batch_size=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_memory_stays_bounded_by_the_chunk_not_the_file(tmp_path: Path) -> None:
    source = tmp_path / "big.jsonl"
    row = {"review": "word " * 60, "other": "x" * 100}
    with open(source, "w", encoding="utf-8") as f:
        for i in range(20_000):
            f.write(json.dumps({**row, "n": i}) + "\n")
    size = source.stat().st_size
    assert size > 8_000_000
    tracemalloc.start()
    try:
        summary = score_file(source, FakeScorer(), options=ScoreOptions(chunk_size=100, progress=False))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.scored == 20_000
    assert peak < size / 4, f"peak {peak} bytes for a {size}-byte file read in chunks of 100 rows"


def test_progress_bar_reports_rows_rate_and_rejects(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    _write_jsonl(source, ["fine"] * 5 + [""])
    stream = io.StringIO()
    score_file(source, FakeScorer(), options=ScoreOptions(chunk_size=2, progress=True), progress_stream=stream)
    final = stream.getvalue().replace("\r", "\n").strip().splitlines()[-1]
    assert "6 rows" in final and "rows/s" in final and "rejected=1" in final and "read=100%" in final


def test_no_progress_bar_when_off(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    _write_jsonl(source, ["fine"])
    stream = io.StringIO()
    score_file(source, FakeScorer(), options=ScoreOptions(progress=False), progress_stream=stream)
    assert stream.getvalue() == ""
