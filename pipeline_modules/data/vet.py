"""Vetting: which reviews are kept, why the others are dropped, and the counts that say so.

Every source (archive, folder, TFDS) goes through the same `Collector`, so no review is lost without a count and a
reason, whichever place it came from.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field

from pipeline_modules.data.layout import RATING_RANGE, SPLITS

logger = logging.getLogger(__name__)

# Drop reasons (keys of SplitReport.dropped).
EMPTY = "empty"
NOT_UTF8 = "not_utf8"
NO_RATING = "no_rating"
RATING_MISMATCH = "rating_mismatch"

_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_MAX_EXAMPLES_PER_REASON = 5


@dataclass(frozen=True, slots=True)
class ImdbRecord:
    """One review as the pipeline sees it; ``id`` is its path below aclImdb/ without ``.txt`` (or tfds/<split>/<n>)."""

    text: str
    label: int
    rating: int
    id: str

    @property
    def word_count(self) -> int:
        """Whitespace-separated words, with HTML line breaks counted as spaces (``<br />`` is markup, not a word)."""
        return len(_BR.sub(" ", self.text).split())


@dataclass
class SplitReport:
    """What happened to one split, so that no review is lost without a count and a reason."""

    split: str
    read: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    dropped_examples: dict[str, list[str]] = field(default_factory=dict)
    kept_per_label: Counter[int] = field(default_factory=Counter)
    sampled: int | None = None  # None: no subsampling asked for
    sampled_per_label: Counter[int] = field(default_factory=Counter)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    @property
    def output(self) -> int:
        """How many records leave the reader for this split (after subsampling)."""
        return self.kept if self.sampled is None else self.sampled

    def drop(self, reason: str, name: str) -> None:
        self.dropped[reason] += 1
        examples = self.dropped_examples.setdefault(reason, [])
        if len(examples) < _MAX_EXAMPLES_PER_REASON:
            examples.append(name)

    def log_line(self) -> str:
        line = f"IMDB {self.split}: read {self.read}, kept {self.kept}, dropped {self.dropped_total}"
        if self.dropped:
            line += " (" + ", ".join(f"{reason}: {n}" for reason, n in sorted(self.dropped.items())) + ")"
        if self.sampled is not None:
            line += f", sampled {self.sampled} ({self.sampled_per_label[1]} pos / {self.sampled_per_label[0]} neg)"
        return line


@dataclass
class ImdbReport:
    """Counts for the whole read; ``ignored`` counts files outside the labeled review folders (unsup/, README...)."""

    source: str
    splits: dict[str, SplitReport]
    ignored: int = 0

    def log_line(self) -> str:
        lines = [report.log_line() for report in self.splits.values()]
        return "; ".join(lines) + f"; ignored {self.ignored} other files"

    def log(self, log: logging.Logger = logger) -> None:
        log.info("IMDB source: %s", self.source)
        for report in self.splits.values():
            log.info("%s", report.log_line())
            for reason, names in sorted(report.dropped_examples.items()):
                log.warning(
                    "IMDB %s: dropped %d review(s) as %s, e.g. %s",
                    report.split,
                    report.dropped[reason],
                    reason,
                    ", ".join(names),
                )
        if self.ignored:
            log.info("IMDB: ignored %d files outside {train,test}/{pos,neg} (unsup/, README, ...)", self.ignored)


class Collector:
    """Applies the same vetting to every review, whichever source it came from."""

    def __init__(self) -> None:
        self.records: dict[str, list[ImdbRecord]] = {split: [] for split in SPLITS.values()}
        self.reports: dict[str, SplitReport] = {split: SplitReport(split) for split in SPLITS.values()}
        self.ignored = 0

    def add(self, split: str, record_id: str, raw: bytes, label: int, rating: int | None, where: str) -> None:
        """``rating`` None: the source has a file name but no valid rating in it; 0: the source has no ratings."""
        report = self.reports[split]
        report.read += 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            report.drop(NOT_UTF8, where)
            return
        text = text.removeprefix("\ufeff")
        if not _BR.sub(" ", text).strip():
            report.drop(EMPTY, where)
            return
        if rating is None:
            report.drop(NO_RATING, where)
            return
        if rating != 0 and rating not in RATING_RANGE[label]:
            # The folder and the file name disagree; either could be wrong, so neither label can be trusted.
            report.drop(RATING_MISMATCH, where)
            return
        report.kept += 1
        report.kept_per_label[label] += 1
        self.records[split].append(ImdbRecord(text=text, label=label, rating=rating, id=record_id))
