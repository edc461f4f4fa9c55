"""Score one file: read a chunk, score it in batches (several in flight), write it and its rejects, repeat.

Only one chunk is in memory at a time, so a file larger than the machine's memory scores in constant space. The
output and the rejects file are written under a temporary name and renamed when the whole input is done: a run that
stops half-way leaves no half-written output that could pass for a finished one.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pipeline_modules import features
from pipeline_modules.scoring import rows
from pipeline_modules.scoring.parquet import ParquetReader, ParquetWriter
from pipeline_modules.scoring.rows import Chunk, Reader, Reject, ScoringError, Writer
from pipeline_modules.scoring.scorers import Scorer
from pipeline_modules.scoring.text_files import (
    DEFAULT_MAX_FIELD_BYTES,
    CsvReader,
    CsvWriter,
    JsonLinesReader,
    JsonLinesWriter,
    default_delimiter,
)

PARTIAL_SUFFIX = ".partial"


@dataclass(frozen=True)
class ScoreOptions:
    text_column: str = features.REVIEW_KEY
    probability_column: str = features.PROBABILITY_OUTPUT
    label_column: str = features.LABEL_OUTPUT
    format: str = ""  # empty: from the input's extension
    delimiter: str = ""  # CSV; empty: tab for .tsv, else comma
    batch_size: int = 64  # texts per model call (or request)
    chunk_size: int = 4096  # rows read, scored and written at a time: what bounds the memory
    concurrency: int = 2  # model calls (requests) in flight at once
    max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES
    progress: bool | None = None  # None: a bar when stderr is a terminal


@dataclass
class ScoreSummary:
    input: str
    output: str
    rejects: str
    format: str
    model: str
    rows: int = 0
    scored: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "output": self.output,
            "rejects": self.rejects,
            "format": self.format,
            "model": self.model,
            "rows": self.rows,
            "scored": self.scored,
            "rejected": self.rejected,
            "reasons": dict(sorted(self.reasons.items())),
            "seconds": round(self.seconds, 3),
            "rows_per_s": round(self.rows_per_s, 1),
        }

    def line(self) -> str:
        why = ", ".join(f"{reason} {count}" for reason, count in sorted(self.reasons.items()))
        return (
            f"{self.model}: {self.rows} rows: {self.scored} scored -> {self.output}, {self.rejected} rejected"
            f"{f' ({why})' if why else ''} -> {self.rejects}; {self.seconds:.1f} s, {self.rows_per_s:.0f} rows/s"
        )


def open_reader(path: Path, fmt: str, options: ScoreOptions) -> Reader:
    if not path.exists():
        raise ScoringError(f"no input file {path}")
    if path.is_dir():
        raise ScoringError(f"{path} is a folder: name one input file")
    try:
        if fmt == "csv":
            return CsvReader(
                path, options.text_column, options.delimiter or default_delimiter(path), options.max_field_bytes
            )
        if fmt == "jsonl":
            return JsonLinesReader(path, options.text_column, options.max_field_bytes)
        return ParquetReader(path, options.text_column)
    except PermissionError as error:
        raise ScoringError(f"cannot read {path}: {rows.short(error)}") from None


def open_writer(path: Path, reader: Reader, options: ScoreOptions) -> Writer:
    added = (options.probability_column, options.label_column)
    if isinstance(reader, CsvReader):
        return CsvWriter(path, reader.columns, reader.delimiter, added)
    if isinstance(reader, JsonLinesReader):
        return JsonLinesWriter(path, *added)
    assert isinstance(reader, ParquetReader)
    return ParquetWriter(path, reader.schema, *added)


def default_output(path: Path) -> Path:
    """``reviews.csv`` → ``reviews.scored.csv``."""
    return path.with_name(f"{path.stem}.scored{path.suffix}")


def default_rejects(output: Path) -> Path:
    """``reviews.scored.csv`` → ``reviews.scored.rejects.jsonl`` (always JSON Lines: a reject may not fit the input
    format, a line that is not JSON say)."""
    return output.with_name(f"{output.stem}.rejects.jsonl")


def _check_outputs(
    input_path: Path, output: Path, rejects: Path, fmt: str, reader: Reader, options: ScoreOptions
) -> None:
    if options.probability_column == options.label_column:
        raise ScoringError("--probability-column and --label-column must differ")
    same = {input_path.resolve()} & {output.resolve(), rejects.resolve()}
    if same or output.resolve() == rejects.resolve():
        raise ScoringError(f"the input, the output and the rejects file must be three different files ({output})")
    try:
        out_fmt = rows.detect_format(output)
    except ScoringError:
        out_fmt = fmt
    if out_fmt != fmt:
        raise ScoringError(f"{output} names a {out_fmt} file, but the output has the input's format ({fmt})")
    clash = [name for name in (options.probability_column, options.label_column) if name in (reader.columns or ())]
    if clash:
        raise ScoringError(
            f"{input_path} already has a column {clash[0]!r}: choose other output names "
            "(--probability-column, --label-column)"
        )
    if not output.parent.is_dir():
        raise ScoringError(f"no folder {output.parent} for the output")


class _Progress:
    """tqdm on stderr: rows done and rows per second, rejects, and how much of the file was read."""

    def __init__(self, reader: Reader, enabled: bool | None, stream: TextIO) -> None:
        from tqdm import tqdm

        self.reader = reader
        self.bar = tqdm(
            total=reader.total_rows, unit=" rows", file=stream, disable=None if enabled is None else not enabled,
            dynamic_ncols=True, mininterval=0.5,
        )  # fmt: skip

    def update(self, rows_done: int, rejected: int) -> None:
        postfix = {"rejected": rejected}
        fraction = self.reader.fraction_read()
        if self.reader.total_rows is None and fraction is not None:
            postfix["read"] = f"{fraction:.0%}"  # type: ignore[assignment]
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(rows_done)

    def close(self) -> None:
        self.bar.close()


def _score_batch(scorer: Scorer, texts: Sequence[str]) -> tuple[list[Any], dict[int, str]]:
    """Scores for `texts`; when the batch fails on its inputs, each text alone, so one bad text costs one row."""
    try:
        probabilities, labels = scorer.score(texts)
        return list(zip(probabilities, labels, strict=True)), {}
    except Exception as error:  # noqa: BLE001 - sorted into "this input" or "stop" just below
        if not scorer.is_row_error(error):
            raise
    results: list[Any] = []
    failed: dict[int, str] = {}
    for index, text in enumerate(texts):
        try:
            (probability,), (label,) = scorer.score([text])
            results.append((probability, label))
        except Exception as error:  # noqa: BLE001
            if not scorer.is_row_error(error):
                raise
            results.append((None, None))
            failed[index] = rows.short(error)
    return results, failed


def _score_chunk(
    chunk: Chunk, scorer: Scorer, pool: ThreadPoolExecutor, batch_size: int
) -> tuple[list[float | None], list[str | None]]:
    probabilities: list[float | None] = [None] * len(chunk)
    labels: list[str | None] = [None] * len(chunk)
    todo = [i for i, text in enumerate(chunk.texts) if text is not None]
    groups = [todo[start : start + batch_size] for start in range(0, len(todo), batch_size)]
    batches = [[str(chunk.texts[i]) for i in group] for group in groups]  # all set: `todo` has no rejected row
    for group, (results, failed) in zip(groups, pool.map(lambda b: _score_batch(scorer, b), batches), strict=True):
        for position, (index, (probability, label)) in enumerate(zip(group, results, strict=True)):
            if position in failed:
                chunk.reject(index, rows.MODEL_ERROR, failed[position])
            else:
                probabilities[index], labels[index] = probability, label
    return probabilities, labels


def score_file(
    input_path: str | os.PathLike[str],
    scorer: Scorer,
    output_path: str | os.PathLike[str] | None = None,
    rejects_path: str | os.PathLike[str] | None = None,
    options: ScoreOptions | None = None,
    progress_stream: TextIO | None = None,
) -> ScoreSummary:
    """Score every row of `input_path` into `output_path` (same format, two columns added) and the rejects file."""
    options = options or ScoreOptions()
    if options.batch_size < 1 or options.chunk_size < 1 or options.concurrency < 1:
        raise ScoringError("--batch-size, --chunk-size and --concurrency must be at least 1")
    source = Path(input_path)
    fmt = rows.detect_format(source, options.format)
    reader = open_reader(source, fmt, options)
    output = Path(output_path) if output_path else default_output(source)
    rejects = Path(rejects_path) if rejects_path else default_rejects(output)
    partial_output = output.with_name(output.name + PARTIAL_SUFFIX)
    partial_rejects = rejects.with_name(rejects.name + PARTIAL_SUFFIX)
    summary = ScoreSummary(str(source), str(output), str(rejects), fmt, scorer.description)
    started = time.perf_counter()
    try:
        _check_outputs(source, output, rejects, fmt, reader, options)
        if isinstance(reader, JsonLinesReader):
            reader.added = (options.probability_column, options.label_column)
        writer = open_writer(partial_output, reader, options)
        progress = _Progress(reader, options.progress, progress_stream or sys.stderr)
        try:
            with (
                open(partial_rejects, "w", encoding="utf-8") as rejects_file,
                ThreadPoolExecutor(options.concurrency, thread_name_prefix="score") as pool,
            ):
                for chunk in reader.chunks(options.chunk_size):
                    probabilities, labels = _score_chunk(chunk, scorer, pool, options.batch_size)
                    writer.write(chunk, probabilities, labels)
                    _write_rejects(rejects_file, chunk.rejects)
                    summary.rows += len(chunk)
                    summary.rejected += len(chunk.rejects)
                    summary.reasons.update(r.reason for r in chunk.rejects)
                    progress.update(len(chunk), summary.rejected)
        finally:
            progress.close()
            writer.close()
        os.replace(partial_output, output)
        os.replace(partial_rejects, rejects)
    except BaseException:
        for leftover in (partial_output, partial_rejects):
            leftover.unlink(missing_ok=True)
        raise
    finally:
        reader.close()
    summary.scored = summary.rows - summary.rejected
    summary.seconds = time.perf_counter() - started
    return summary


def _write_rejects(stream: TextIO, found: Sequence[Reject]) -> None:
    stream.writelines(json.dumps(r.as_json(), ensure_ascii=False) + "\n" for r in sorted(found, key=lambda r: r.row))
