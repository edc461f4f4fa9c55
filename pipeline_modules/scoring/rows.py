"""What every input format shares: a chunk of rows, a rejected row, the reasons, and how a text is vetted.

A reader turns its file into `Chunk`s of at most `chunk_size` rows; each row is either scorable (its text is set) or
rejected (its text is None and a `Reject` says why), so no row can go missing between the input, the output and the
rejects file. Row numbers are 1-based positions among the data records: CSV counts records after the header (a
blank line is a record), JSON Lines counts lines, Parquet counts rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# Reasons a row is rejected (the `reason` field of a rejects-file line).
EMPTY_TEXT = "empty_text"  # empty or whitespace-only: the model server rejects it too
NOT_UTF8 = "not_utf8"  # bytes that are not UTF-8 (in the text or in any column that is written back)
MISSING_TEXT = "missing_text"  # the row has no value for the text column (JSON key absent, Parquet null)
TEXT_NOT_STRING = "text_not_string"  # a JSON number, list, object or boolean where the text should be
MALFORMED_JSON = "malformed_json"
NOT_AN_OBJECT = "not_an_object"  # a JSON line that parses but is not an object
BLANK_LINE = "blank_line"
LINE_TOO_LONG = "line_too_long"  # longer than --max-line-bytes: read in pieces and skipped, never held in memory
FIELD_COUNT = "wrong_field_count"  # a CSV record with more or fewer fields than the header
MALFORMED_CSV = "malformed_csv"  # the csv module could not parse the record (e.g. a field over the size limit)
OUTPUT_COLUMN_EXISTS = "output_column_exists"  # a JSON object already has a key the output would overwrite
MODEL_ERROR = "model_error"  # the model (or server) refused this one row with a client error

FORMATS = ("csv", "jsonl", "parquet")
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_SURROGATE = re.compile("[\udc80-\udcff]")  # what errors="surrogateescape" makes of bytes that are not UTF-8


class ScoringError(Exception):
    """A problem with what the user asked for (file, format, column, model): one line, exit status 2."""


@dataclass(frozen=True)
class Reject:
    row: int
    reason: str
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"row": self.row, "reason": self.reason, "message": self.message}


@dataclass
class Chunk:
    """Consecutive rows from `first_row` on. `records[i]` is the format's own row (None when rejected on reading);
    `texts[i]` is the text to score, None for a rejected row. Parquet keeps a pyarrow Table in `table` instead."""

    first_row: int
    texts: list[str | None]
    records: list[Any] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    table: Any = None

    def __len__(self) -> int:
        return len(self.texts)

    def reject(self, index: int, reason: str, message: str) -> None:
        self.texts[index] = None
        self.rejects.append(Reject(self.first_row + index, reason, message))


class Reader(Protocol):
    @property
    def format(self) -> str: ...

    @property
    def columns(self) -> Sequence[str] | None:
        """None where the format has no header (JSON Lines)."""

    @property
    def total_rows(self) -> int | None:
        """Known up front only for Parquet."""

    def chunks(self, chunk_size: int) -> Iterator[Chunk]: ...

    def fraction_read(self) -> float | None: ...

    def close(self) -> None: ...


class Writer(Protocol):
    def write(self, chunk: Chunk, probabilities: Sequence[float | None], labels: Sequence[str | None]) -> None:
        """Write the chunk's scored rows (those whose text is not None), with the two new columns."""

    def close(self) -> None: ...


def vet_text(value: object) -> tuple[str | None, tuple[str, str] | None]:
    """The text to score, or (reason, message) for why the row cannot be scored."""
    if value is None:
        return None, (MISSING_TEXT, "no value in the text column")
    if not isinstance(value, str):
        return None, (TEXT_NOT_STRING, f"the text column holds a {type(value).__name__}, not a string")
    if _SURROGATE.search(value):
        return None, (NOT_UTF8, "the text is not valid UTF-8")
    if not value.strip():
        return None, (EMPTY_TEXT, "the text is empty or only whitespace")
    return value, None


def has_undecodable(value: str) -> bool:
    """Whether a field read with errors="surrogateescape" held bytes that are not UTF-8."""
    return _SURROGATE.search(value) is not None


def detect_format(path: Path, given: str = "") -> str:
    """The format named (``--format``), else the one the file name's extension says."""
    if given:
        if given not in FORMATS:
            raise ScoringError(f"unknown format {given!r}: choose one of {', '.join(FORMATS)}")
        return given
    found = _EXTENSIONS.get(path.suffix.lower())
    if found is None:
        known = ", ".join(sorted(_EXTENSIONS))
        raise ScoringError(f"cannot tell the format of {path} from its extension ({known}): pass --format")
    return found


def short(exc: BaseException, limit: int = 200) -> str:
    """An exception as one short line, fit for a rejects file or an error message."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."
