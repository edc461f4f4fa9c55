"""Reads the model server's request log (``model_server.logs.RequestLog``) into the features training saw.

Each line is one instance: ``ts``, ``model``, ``version``, the masked review (under ``review`` when the model's
serving hints name the training feature, else under the input's name ``text``) and the outputs (``probability``,
``label``). From the masked text come ``word_count`` and ``length_bucket`` by the very rules ExampleGen used, so the
statistics compare feature for feature; the predicted label becomes 1 / 0 like the training label. Lines that cannot
be read are counted with their reason and position, never fatal: a log written by a crashing process ends in half a
line.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from pipeline_modules import features
from pipeline_modules.data.vet import ImdbRecord
from pipeline_modules.drift.window import TimeWindow, parse_time

_MAX_EXAMPLES = 5
_LABELS = {features.POSITIVE: 1, features.NEGATIVE: 0}


class RequestLogError(ValueError):
    """The log cannot give a report: missing, empty, or nothing for the model in the window."""


@dataclasses.dataclass
class Columns:
    """The monitored features of one set of logged instances, column by column (what TFDV reads)."""

    review: list[str] = dataclasses.field(default_factory=list)
    word_count: list[int] = dataclasses.field(default_factory=list)
    length_bucket: list[str] = dataclasses.field(default_factory=list)
    label: list[int | None] = dataclasses.field(default_factory=list)
    probability: list[float | None] = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.review)

    def append(self, review: str, label: int | None, probability: float | None) -> None:
        count = ImdbRecord(text=review, label=0, rating=0, id="").word_count  # ExampleGen's own rule
        self.review.append(review)
        self.word_count.append(count)
        self.length_bucket.append(features.length_bucket(count))
        self.label.append(label)
        self.probability.append(probability)


@dataclasses.dataclass
class LogScan:
    """What one pass over the log found: the instances per model version, and a count for every line left out."""

    model_name: str
    window: TimeWindow
    lines: int = 0
    corrupt: Counter[str] = dataclasses.field(default_factory=Counter)
    corrupt_examples: list[str] = dataclasses.field(default_factory=list)
    outside_window: int = 0
    other_models: Counter[str] = dataclasses.field(default_factory=Counter)
    without_prediction: int = 0
    current: dict[int, Columns] = dataclasses.field(default_factory=dict)
    previous: dict[int, Columns] = dataclasses.field(default_factory=dict)

    @property
    def corrupt_total(self) -> int:
        return sum(self.corrupt.values())

    def versions(self) -> dict[int, int]:
        return {v: len(c) for v, c in sorted(self.current.items())}

    def bad_line(self, where: str, reason: str) -> None:
        self.corrupt[reason] += 1
        if len(self.corrupt_examples) < _MAX_EXAMPLES:
            self.corrupt_examples.append(f"{where}: {reason}")


def _open(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")  # rotated logs may be compressed


def _lines(paths: Sequence[Path]) -> Iterator[tuple[str, bytes]]:
    for path in paths:
        with _open(path) as handle:
            for number, line in enumerate(handle, 1):
                yield f"{path.name}:{number}", line


def _prediction(record: dict[str, Any]) -> tuple[int | None, float | None]:
    probability = record.get(features.PROBABILITY_OUTPUT)
    if isinstance(probability, list) and len(probability) == 1:
        probability = probability[0]
    p = float(probability) if isinstance(probability, int | float) and not isinstance(probability, bool) else None
    if p is not None and not math.isfinite(p):
        p = None
    label = _LABELS.get(record.get(features.LABEL_OUTPUT))  # type: ignore[arg-type]
    classes, scores = record.get("classes"), record.get("scores")  # TF Serving's Classify API, when it is logged
    if (
        label is None
        and isinstance(classes, list)
        and isinstance(scores, list)
        and len(classes) == len(scores) > 0
        and all(isinstance(v, int | float) for v in scores)
    ):
        label = _LABELS.get(classes[max(range(len(scores)), key=scores.__getitem__)])
        if p is None and features.POSITIVE in classes:
            p = float(scores[classes.index(features.POSITIVE)])
    if label is None and p is not None:
        label = int(p >= 0.5)  # the exported model's own threshold
    return label, p


def _review(record: dict[str, Any]) -> str | None:
    value = record.get(features.REVIEW_KEY, record.get(features.TEXT_INPUT))
    return value if isinstance(value, str) else None


def scan_request_log(
    paths: Sequence[str | Path], model_name: str, window: TimeWindow, *, with_previous: bool = True
) -> LogScan:
    """One pass over the log files (plain or .gz, in the order given); ``with_previous`` also keeps the instances
    of the window just before ``window`` (the baseline of drift over time)."""
    files = [Path(p) for p in paths]
    if not files:
        raise RequestLogError("no request log given (the server's --request_log_path)")
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise RequestLogError(f"request log not found: {', '.join(missing)}")
    scan = LogScan(model_name=model_name, window=window)
    previous = window.previous() if with_previous else None
    for where, raw in _lines(files):
        if not raw.strip():
            continue
        scan.lines += 1
        try:
            record = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            scan.bad_line(where, "not UTF-8")
            continue
        except ValueError:
            scan.bad_line(where, "not JSON (a truncated line?)")
            continue
        if not isinstance(record, dict):
            scan.bad_line(where, "not a JSON object")
            continue
        try:
            ts: dt.datetime = parse_time(str(record["ts"]))
        except (KeyError, ValueError):
            scan.bad_line(where, "no valid 'ts'")
            continue
        if window.contains(ts):
            target = scan.current
        elif previous is not None and previous.contains(ts):
            target = scan.previous
        else:
            scan.outside_window += 1
            continue
        model = record.get("model")
        if model != model_name:
            if target is scan.current:
                scan.other_models[str(model)] += 1
            continue
        version = record.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            scan.bad_line(where, "no integer 'version'")
            continue
        review = _review(record)
        if review is None:
            scan.bad_line(where, f"no '{features.REVIEW_KEY}' text")
            continue
        label, probability = _prediction(record)
        if label is None and target is scan.current:
            scan.without_prediction += 1
        target.setdefault(version, Columns()).append(review, label, probability)
    return scan


def select_version(scan: LogScan, version: int = 0) -> tuple[int, Columns]:
    """The instances of ``version`` (0: the newest version logged in the window), or a clear error."""
    if not scan.current:
        found = f"{scan.lines} lines read, {scan.outside_window} outside the window, {scan.corrupt_total} unreadable"
        others = f"; other models: {dict(scan.other_models)}" if scan.other_models else ""
        raise RequestLogError(
            f"no logged request for model {scan.model_name!r} from {scan.window.describe()} ({found}{others})"
        )
    chosen = version or max(scan.current)
    if chosen not in scan.current:
        raise RequestLogError(
            f"no logged request for {scan.model_name!r} version {chosen} in the window; "
            f"logged versions: {scan.versions()}"
        )
    return chosen, scan.current[chosen]
