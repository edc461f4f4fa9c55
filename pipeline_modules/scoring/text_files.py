"""CSV and JSON Lines, read and written a chunk at a time (never the whole file).

CSV is decoded with ``errors="surrogateescape"``: a record holding bytes that are not UTF-8 still parses, and is then
rejected (`not_utf8`) instead of stopping the file or being written back altered. JSON Lines is read as bytes, one
line at a time with a length cap, so one line without an end cannot fill the memory.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from pipeline_modules.scoring import rows
from pipeline_modules.scoring.rows import Chunk, ScoringError

DEFAULT_MAX_FIELD_BYTES = 16 * 1024 * 1024  # a CSV field (or JSON line) larger than this is rejected, not held
_READ_PIECE = 1 << 20


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class CsvReader:
    """The header names the columns; every later record is one row."""

    format = "csv"
    total_rows = None

    def __init__(
        self, path: Path, text_column: str, delimiter: str = ",", max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES
    ) -> None:
        self.path = path
        self._size = _size(path)
        # utf-8-sig drops a byte-order mark; newline="" lets the csv module see quoted line breaks.
        self._raw = open(path, "rb")  # noqa: SIM115
        self._file = io.TextIOWrapper(self._raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
        csv.field_size_limit(max(max_field_bytes, csv.field_size_limit()))
        self._reader = csv.reader(self._file, delimiter=delimiter)
        try:
            header = next(self._reader)
        except StopIteration:
            self.close()
            raise ScoringError(f"{path} is empty: a CSV file needs a header row naming its columns") from None
        except csv.Error as error:
            self.close()
            raise ScoringError(f"{path}: cannot parse the CSV header: {rows.short(error)}") from None
        if any(rows.has_undecodable(name) for name in header):
            self.close()
            raise ScoringError(f"{path}: the CSV header is not valid UTF-8")
        if text_column not in header:
            self.close()
            raise ScoringError(
                f"{path} has no column {text_column!r} (its columns: {', '.join(header) or 'none'}): "
                "name the text column with --text-column"
            )
        self.columns: Sequence[str] = header
        self.delimiter = delimiter
        self._text_index = header.index(text_column)

    def _next(self) -> tuple[list[str] | None, str]:
        try:
            return next(self._reader), ""
        except csv.Error as error:
            return None, rows.short(error)

    def chunks(self, chunk_size: int) -> Iterator[Chunk]:
        row = 1
        done = False
        while not done:
            chunk = Chunk(first_row=row, texts=[])
            while len(chunk) < chunk_size:
                try:
                    record, error = self._next()
                except StopIteration:
                    done = True
                    break
                index = len(chunk)
                chunk.texts.append(None)
                chunk.records.append(record)
                if record is None:
                    chunk.reject(index, rows.MALFORMED_CSV, error)
                elif not record:
                    chunk.reject(index, rows.BLANK_LINE, "a blank line")
                elif len(record) != len(self.columns):
                    chunk.reject(
                        index, rows.FIELD_COUNT, f"{len(record)} fields where the header has {len(self.columns)}"
                    )
                elif any(rows.has_undecodable(value) for value in record):
                    bad = [
                        name for name, value in zip(self.columns, record, strict=True) if rows.has_undecodable(value)
                    ]
                    chunk.reject(index, rows.NOT_UTF8, f"bytes that are not UTF-8 in column(s) {', '.join(bad)}")
                else:
                    text, problem = rows.vet_text(record[self._text_index])
                    chunk.texts[index] = text
                    if problem is not None:
                        chunk.reject(index, *problem)
            row += len(chunk)
            if len(chunk):
                yield chunk

    def fraction_read(self) -> float | None:
        if not self._size or self._file.closed:
            return None
        return min(1.0, self._raw.tell() / self._size)

    def close(self) -> None:
        self._file.close()


class CsvWriter:
    def __init__(self, path: Path, columns: Sequence[str], delimiter: str, added: Sequence[str]) -> None:
        self._file = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        self._writer = csv.writer(self._file, delimiter=delimiter, lineterminator="\n")
        self._writer.writerow([*columns, *added])

    def write(self, chunk: Chunk, probabilities: Sequence[float | None], labels: Sequence[str | None]) -> None:
        for record, text, probability, label in zip(chunk.records, chunk.texts, probabilities, labels, strict=True):
            if text is not None:
                self._writer.writerow([*record, repr(probability), label])

    def close(self) -> None:
        self._file.close()


class JsonLinesReader:
    """One JSON object per line; every line (blank ones too) is a row."""

    format = "jsonl"
    columns = None
    total_rows = None

    def __init__(self, path: Path, text_column: str, max_line_bytes: int = DEFAULT_MAX_FIELD_BYTES) -> None:
        self.path = path
        self.text_column = text_column
        self.max_line_bytes = max_line_bytes
        self._size = _size(path)
        self._file: IO[bytes] = open(path, "rb")  # noqa: SIM115
        self.added: Sequence[str] = ()  # set by the caller: keys the output adds, which a row must not have

    def _line(self) -> tuple[bytes, bool]:
        """The next line (b"" at the end) and whether it was cut at the length cap (the rest is skipped)."""
        line = self._file.readline(self.max_line_bytes + 1)
        if len(line) <= self.max_line_bytes or line.endswith(b"\n"):
            return line, False
        while True:  # skip the rest of an over-long line in pieces
            rest = self._file.readline(_READ_PIECE)
            if not rest or rest.endswith(b"\n"):
                return line, True

    def _parse(self, chunk: Chunk, index: int, line: bytes) -> None:
        try:
            decoded = line.decode("utf-8")
        except UnicodeDecodeError as error:
            chunk.reject(index, rows.NOT_UTF8, f"the line is not valid UTF-8 (byte {error.start})")
            return
        if chunk.first_row + index == 1:
            decoded = decoded.removeprefix("\ufeff")
        if not decoded.strip():
            chunk.reject(index, rows.BLANK_LINE, "a blank line")
            return
        try:
            record = json.loads(decoded)
        except ValueError as error:
            chunk.reject(index, rows.MALFORMED_JSON, rows.short(error))
            return
        if not isinstance(record, dict):
            chunk.reject(index, rows.NOT_AN_OBJECT, f"a JSON {type(record).__name__}, not an object")
            return
        clash = [key for key in self.added if key in record]
        if clash:
            chunk.reject(
                index,
                rows.OUTPUT_COLUMN_EXISTS,
                f"the object already has {', '.join(map(repr, clash))}: choose other output names "
                "(--probability-column, --label-column)",
            )
            return
        chunk.records[index] = record
        text, problem = rows.vet_text(record.get(self.text_column))
        if problem is not None and problem[0] == rows.MISSING_TEXT and self.text_column not in record:
            problem = (rows.MISSING_TEXT, f"the object has no key {self.text_column!r}")
        chunk.texts[index] = text
        if problem is not None:
            chunk.reject(index, *problem)

    def chunks(self, chunk_size: int) -> Iterator[Chunk]:
        row = 1
        done = False
        while not done:
            chunk = Chunk(first_row=row, texts=[])
            while len(chunk) < chunk_size:
                line, cut = self._line()
                if not line:
                    done = True
                    break
                index = len(chunk)
                chunk.texts.append(None)
                chunk.records.append(None)
                if cut:
                    chunk.reject(index, rows.LINE_TOO_LONG, f"longer than {self.max_line_bytes} bytes")
                else:
                    self._parse(chunk, index, line)
            row += len(chunk)
            if len(chunk):
                yield chunk

    def fraction_read(self) -> float | None:
        if not self._size or self._file.closed:
            return None
        return min(1.0, self._file.tell() / self._size)

    def close(self) -> None:
        self._file.close()


class JsonLinesWriter:
    def __init__(self, path: Path, probability_column: str, label_column: str) -> None:
        self._file = open(path, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
        self._keys = (probability_column, label_column)

    def write(self, chunk: Chunk, probabilities: Sequence[float | None], labels: Sequence[str | None]) -> None:
        lines = []
        for record, text, probability, label in zip(chunk.records, chunk.texts, probabilities, labels, strict=True):
            if text is not None:
                out: dict[str, Any] = {**record, self._keys[0]: probability, self._keys[1]: label}
                lines.append(json.dumps(out, ensure_ascii=False) + "\n")
        self._file.writelines(lines)

    def close(self) -> None:
        self._file.close()


def default_delimiter(path: str | os.PathLike[str]) -> str:
    return "\t" if str(path).lower().endswith(".tsv") else ","
