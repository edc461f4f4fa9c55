"""IMDB Large Movie Review data in: find it, read it, vet it, and (for tests and the smoke preset) fake it.

Pure Python on purpose (TensorFlow Datasets is imported only on its own code path), so that the TFX component, the
command line and the tests share one reader whose every decision is unit-testable without a pipeline.

The official layout (Maas et al., 2011; https://ai.stanford.edu/~amaas/data/sentiment/) is
``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`` with ratings 1-4 under ``neg`` and 7-10 under ``pos``. The
official test split becomes the pipeline's ``eval`` split, because the dataset's authors keep train and test disjoint
in movies and a random re-split would leak.
"""

from __future__ import annotations

import gzip
import io
import logging
import lzma
import os
import random
import re
import socket
import tarfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

logger = logging.getLogger(__name__)

DATASET_URL = "https://ai.stanford.edu/~amaas/data/sentiment/"
ARCHIVE_NAME = "aclImdb_v1.tar.gz"
ENV_VAR = "IMDB_ARCHIVE"
TFDS_NAME = "imdb_reviews"
TFDS_SOURCE = "tfds"
DEFAULT_FLAG = "--imdb-archive"

# Relative to the project root, in the order they are tried.
CONVENTIONAL_PATHS = ("data/aclImdb_v1.tar.gz", "data/aclImdb_v1_labeled.tar.gz", "data/aclImdb")

# Official split folder -> pipeline split name.
SPLITS = {"train": "train", "test": "eval"}
CLASSES = {"neg": 0, "pos": 1}
# The dataset's own README: negative reviews have a score <= 4 out of 10, positive ones >= 7.
RATING_RANGE = {0: range(1, 5), 1: range(7, 11)}

# Drop reasons (keys of SplitReport.dropped).
EMPTY = "empty"
NOT_UTF8 = "not_utf8"
NO_RATING = "no_rating"
RATING_MISMATCH = "rating_mismatch"

# Hosts TensorFlow Datasets needs to build imdb_reviews: its prepared-data bucket and the dataset's own download.
TFDS_HOSTS = (("storage.googleapis.com", 443), ("ai.stanford.edu", 80))

_FILE_NAME = re.compile(r"^(?P<id>\d+)_(?P<rating>\d+)\.txt$")
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_MAX_EXAMPLES_PER_REASON = 5
_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error, lzma.LZMAError, OSError)


class ImdbDataNotFound(FileNotFoundError):
    """No IMDB data could be found, or a path the user named does not exist; the message says how to fix it."""


class ImdbLayoutError(ValueError):
    """The data was found but cannot train a classifier honestly (missing split or class, unreadable archive)."""


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


@dataclass(frozen=True)
class ImdbSource:
    """Where the data comes from and why that place was chosen (``origin`` is logged so users see the precedence)."""

    kind: str  # "archive", "folder" or "tfds"
    origin: str  # "flag", "env", "conventional", "tfds-prepared", "tfds-network"
    path: Path | None = None  # archive file or folder; None for TFDS
    tfds_data_dir: Path | None = None  # a TFDS data dir that already holds imdb_reviews, when one was found

    def describe(self) -> str:
        if self.kind == TFDS_SOURCE:
            where = f" from {self.tfds_data_dir}" if self.tfds_data_dir else ""
            return f"TensorFlow Datasets {TFDS_NAME}{where} ({self.origin})"
        return f"{self.kind} {self.path} ({self.origin})"

    def as_parameter(self) -> str:
        """The string form ImdbExampleGen's ``source`` parameter takes."""
        return TFDS_SOURCE if self.kind == TFDS_SOURCE else str(self.path)


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


@dataclass
class ImdbData:
    """Records per pipeline split ("train", "eval"), in their final (shuffled) order, with the report."""

    splits: dict[str, list[ImdbRecord]]
    report: ImdbReport


# --------------------------------------------------------------------------------------------------------------------
# Finding the data
# --------------------------------------------------------------------------------------------------------------------


def tfds_reachable(timeout_s: float = 3.0, hosts: Iterable[tuple[str, int]] = TFDS_HOSTS) -> bool:
    """True when a TCP connection to any host TFDS downloads from opens within ``timeout_s`` (DNS included).

    Threads bound the wait: ``socket.create_connection``'s timeout does not cover name resolution, which can hang
    for far longer on a machine without a resolver.
    """
    reached = threading.Event()
    probes = []

    def probe(host: str, port: int) -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                reached.set()
        except OSError:
            pass

    for host, port in hosts:
        thread = threading.Thread(target=probe, args=(host, port), daemon=True, name=f"tfds-probe-{host}")
        thread.start()
        probes.append(thread)
    deadline = time.monotonic() + timeout_s
    while not reached.is_set() and time.monotonic() < deadline:
        if not any(thread.is_alive() for thread in probes):
            break  # every host refused or failed to resolve: no need to sit out the timeout
        reached.wait(0.02)
    return reached.is_set()


def prepared_tfds_dir(env: Mapping[str, str] = os.environ) -> Path | None:
    """The TFDS data dir when ``imdb_reviews`` was already prepared there (usable offline), else None."""
    if env.get("TFDS_DATA_DIR"):
        data_dir = Path(env["TFDS_DATA_DIR"]).expanduser()
    else:
        home = Path(env["HOME"]) if env.get("HOME") else Path.home()
        data_dir = home / "tensorflow_datasets"
    if any((data_dir / TFDS_NAME).glob("*/*/dataset_info.json")):
        return data_dir
    return None


def _local_source(path: Path, origin: str, named_by: str) -> ImdbSource:
    if not path.exists():
        raise ImdbDataNotFound(f"IMDB data named by {named_by} does not exist: {path}")
    if path.is_dir():
        _dataset_root(path)  # fail now, naming the folder, rather than halfway through a pipeline
        return ImdbSource(kind="folder", origin=origin, path=path.resolve())
    if not tarfile.is_tarfile(path):
        raise ImdbLayoutError(
            f"{path} (named by {named_by}) is neither a folder nor a tar archive; expected {ARCHIVE_NAME} as "
            f"downloaded from {DATASET_URL}, or its extracted aclImdb/ folder"
        )
    return ImdbSource(kind="archive", origin=origin, path=path.resolve())


def no_data_message(project_root: Path, flag: str = DEFAULT_FLAG) -> str:
    """How to provide the data; shared by the exception and the docs so they cannot drift apart."""
    places = "\n".join(f"      {project_root / p}" for p in CONVENTIONAL_PATHS)
    return (
        "No IMDB data found: no path given, $IMDB_ARCHIVE unset, nothing in the conventional places under "
        f"{project_root / 'data'}, and TensorFlow Datasets ({TFDS_NAME}) is neither prepared locally nor reachable.\n"
        f"Download {ARCHIVE_NAME} (the Large Movie Review Dataset v1.0) from {DATASET_URL} and then either:\n"
        f"  - pass it on the command line:   {flag} /path/to/{ARCHIVE_NAME}\n"
        f"  - or set the environment variable: {ENV_VAR}=/path/to/{ARCHIVE_NAME}\n"
        "    (the flag and the variable also accept the extracted aclImdb/ folder)\n"
        "  - or put it in a conventional place, tried in this order:\n"
        f"{places}\n"
        "  - or run with network access, so that TensorFlow Datasets can download imdb_reviews."
    )


def locate_imdb_source(
    explicit: str | os.PathLike[str] | None,
    *,
    project_root: Path,
    env: Mapping[str, str] = os.environ,
    network_check: Callable[[], bool] | None = None,
    flag: str = DEFAULT_FLAG,
) -> ImdbSource:
    """Pick the data source: flag > $IMDB_ARCHIVE > conventional places under data/ > TFDS > ImdbDataNotFound.

    A path that was named (flag or variable) and does not exist is an error, never a silent fall-through to another
    source: a typo would otherwise train on different data than the user asked for. ``explicit="tfds"`` forces TFDS.
    """
    if explicit is not None and str(explicit) != "":
        if str(explicit) == TFDS_SOURCE:
            return ImdbSource(kind=TFDS_SOURCE, origin="flag", tfds_data_dir=prepared_tfds_dir(env))
        return _local_source(Path(explicit).expanduser(), "flag", f"the command line ({flag})")
    if env.get(ENV_VAR):
        return _local_source(Path(env[ENV_VAR]).expanduser(), "env", f"${ENV_VAR}")
    for relative in CONVENTIONAL_PATHS:
        candidate = project_root / relative
        if candidate.exists():
            return _local_source(candidate, "conventional", "its conventional place")
    prepared = prepared_tfds_dir(env)
    if prepared is not None:
        return ImdbSource(kind=TFDS_SOURCE, origin="tfds-prepared", tfds_data_dir=prepared)
    if (network_check or tfds_reachable)():  # looked up at call time, so tests can stub it
        return ImdbSource(kind=TFDS_SOURCE, origin="tfds-network")
    raise ImdbDataNotFound(no_data_message(project_root, flag))


def resolve_source(source: str | os.PathLike[str] | ImdbSource) -> ImdbSource:
    """A concrete source from what a component parameter or a caller passes: a path, "tfds", or an ImdbSource."""
    if isinstance(source, ImdbSource):
        return source
    if str(source) == "":
        raise ImdbDataNotFound("No IMDB source given: pass an archive, an aclImdb/ folder, or 'tfds'.")
    if str(source) == TFDS_SOURCE:
        return ImdbSource(kind=TFDS_SOURCE, origin="parameter", tfds_data_dir=prepared_tfds_dir())
    return _local_source(Path(source).expanduser(), "parameter", "the source parameter")


def source_fingerprint(source: str | os.PathLike[str] | ImdbSource) -> str:
    """A cheap identity of the data behind a source (sizes and modification times, not contents).

    TFX caches component runs by their parameters; a pipeline that passes this as a parameter re-reads the data
    when the archive at an unchanged path is replaced, as ExampleGen's own ``input_fingerprint`` does.
    """
    resolved = resolve_source(source)
    if resolved.kind == TFDS_SOURCE:
        return f"tfds:{TFDS_NAME}:{resolved.tfds_data_dir or 'default'}"
    assert resolved.path is not None
    if resolved.path.is_file():
        stat = resolved.path.stat()
        return f"archive:{resolved.path}:bytes={stat.st_size}:mtime_ns={stat.st_mtime_ns}"
    files = total = latest = 0
    for directory, _, names in os.walk(_dataset_root(resolved.path)):
        for name in names:
            stat = os.stat(os.path.join(directory, name))
            files += 1
            total += stat.st_size
            latest = max(latest, stat.st_mtime_ns)
    return f"folder:{resolved.path}:files={files}:bytes={total}:latest_mtime_ns={latest}"


# --------------------------------------------------------------------------------------------------------------------
# Reading the official layout
# --------------------------------------------------------------------------------------------------------------------


def _dataset_root(folder: Path) -> Path:
    """The folder holding train/ and test/: the given one, or its aclImdb/ child."""
    if (folder / "aclImdb").is_dir():
        return folder / "aclImdb"
    if (folder / "train").is_dir() or (folder / "test").is_dir():
        return folder
    raise ImdbLayoutError(
        f"{folder} does not look like the IMDB dataset: expected an aclImdb/ folder in it, or train/ and test/ "
        "folders laid out as aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt"
    )


def _relative_parts(name: str) -> tuple[str, ...]:
    """Path parts below the dataset root for an archive member ("./aclImdb/train/pos/1_9.txt" -> train, pos, ...)."""
    parts = tuple(p for p in PurePosixPath(name).parts if p not in (".", "/"))
    if parts and parts[0] == "aclImdb":
        parts = parts[1:]
    return parts


def _review_location(parts: tuple[str, ...]) -> tuple[str, str, str] | None:
    """(split folder, class folder, file name) when the path is a labeled review file, else None (ignored)."""
    if len(parts) == 3 and parts[0] in SPLITS and parts[1] in CLASSES and parts[2].endswith(".txt"):
        return parts[0], parts[1], parts[2]
    return None


def _iter_archive(path: Path) -> Iterator[tuple[tuple[str, ...], Callable[[], bytes]]]:
    """Stream members without extracting: the archive is read once, sequentially, whatever its size."""

    def unreadable(error: Exception) -> ImdbLayoutError:
        return ImdbLayoutError(f"{path} is not a readable .tar.gz archive of the IMDB dataset (truncated?): {error!r}")

    try:
        with open(path, "rb") as raw:
            is_gzip = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            # tarfile's own decompression takes a truncated gzip stream (an interrupted download) for a normal end of
            # archive, silently losing every review after the cut; GzipFile raises EOFError once read to the end.
            stream = gzip.GzipFile(fileobj=raw, mode="rb") if is_gzip else raw
            with stream, tarfile.open(fileobj=stream, mode="r|" if is_gzip else "r|*") as archive:
                for member in archive:
                    if not member.isfile():
                        continue

                    def load(member: tarfile.TarInfo = member) -> bytes:
                        try:
                            handle = archive.extractfile(member)
                            return handle.read() if handle is not None else b""
                        except _ARCHIVE_ERRORS as error:
                            raise unreadable(error) from error

                    yield _relative_parts(member.name), load
                while is_gzip and stream.read(1 << 20):
                    pass
    except _ARCHIVE_ERRORS as error:
        raise unreadable(error) from error


def _iter_folder(path: Path) -> Iterator[tuple[tuple[str, ...], Callable[[], bytes]]]:
    root = _dataset_root(path)
    for directory, subdirs, files in os.walk(root):
        subdirs.sort()
        relative = Path(directory).relative_to(root).parts
        for name in sorted(files):
            file_path = Path(directory) / name
            if not file_path.is_file():
                continue
            yield (*relative, name), file_path.read_bytes


class _Collector:
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


def _parse_rating(file_name: str) -> int | None:
    """The star rating in ``<id>_<rating>.txt``, or None when the name carries no rating from 1 to 10."""
    match = _FILE_NAME.match(file_name)
    if match is None:
        return None
    rating = int(match["rating"])
    return rating if 1 <= rating <= 10 else None


def _read_layout(path: Path) -> _Collector:
    items = _iter_folder(path) if path.is_dir() else _iter_archive(path)
    collector = _Collector()
    seen: set[tuple[str, str]] = set()
    for parts, load in items:
        location = _review_location(parts)
        if location is None:
            collector.ignored += 1
            continue
        folder, class_name, file_name = location
        seen.add((folder, class_name))
        collector.add(
            split=SPLITS[folder],
            record_id=f"{folder}/{class_name}/{file_name.removesuffix('.txt')}",  # official ids repeat across folders
            raw=load(),
            label=CLASSES[class_name],
            rating=_parse_rating(file_name),
            where="/".join(parts),
        )
    missing = [f"aclImdb/{s}/{c}" for s in SPLITS for c in CLASSES if (s, c) not in seen]
    if missing:
        raise ImdbLayoutError(
            f"{path}: missing or empty folder(s) {', '.join(missing)}; the dataset needs reviews in "
            "aclImdb/{train,test}/{pos,neg} so that both classes are trained and evaluated"
        )
    return collector


def _default_tfds_load(split: str, data_dir: Path | None) -> Iterable[Mapping[str, Any]]:
    import tensorflow_datasets as tfds

    dataset = tfds.load(TFDS_NAME, split=split, data_dir=str(data_dir) if data_dir else None, shuffle_files=False)
    return tfds.as_numpy(dataset)


TfdsLoad = Callable[[str, Path | None], Iterable[Mapping[str, Any]]]


def _read_tfds(data_dir: Path | None, load: TfdsLoad) -> _Collector:
    """TFDS imdb_reviews carries text and label (0 neg, 1 pos) but no star rating: rating 0 means unknown."""
    collector = _Collector()
    for tfds_split, split in (("train", "train"), ("test", "eval")):
        for index, example in enumerate(load(tfds_split, data_dir)):
            raw = example["text"]
            if isinstance(raw, str):
                raw = raw.encode("utf-8")
            label = int(example["label"])
            if label not in (0, 1):
                raise ImdbLayoutError(f"TFDS {TFDS_NAME} {tfds_split}[{index}] has label {label}, expected 0 or 1")
            collector.add(split, f"tfds/{tfds_split}/{index}", bytes(raw), label, 0, f"{tfds_split}[{index}]")
    return collector


def subsample_balanced(records: list[ImdbRecord], max_records: int, seed: int, split: str) -> list[ImdbRecord]:
    """Up to ``max_records`` with as many negatives as positives, the same ones for the same seed.

    Records are sorted by id first, so the choice does not depend on archive order versus folder listing order.
    """
    if max_records < 2:
        raise ValueError(f"max_per_split must be 0 (all) or at least 2 (one per class), got {max_records}")
    by_label = {label: sorted((r for r in records if r.label == label), key=lambda r: r.id) for label in (0, 1)}
    per_class = min(max_records // 2, len(by_label[0]), len(by_label[1]))
    rng = random.Random(f"imdb-subsample:{seed}:{split}")
    return rng.sample(by_label[0], per_class) + rng.sample(by_label[1], per_class)


def shuffled(records: list[ImdbRecord], seed: int, split: str) -> list[ImdbRecord]:
    """A seed-determined order: the archive is sorted by class, and TFRecord readers mostly read in file order."""
    ordered = sorted(records, key=lambda r: r.id)
    random.Random(f"imdb-shuffle:{seed}:{split}").shuffle(ordered)
    return ordered


def read_imdb(
    source: str | os.PathLike[str] | ImdbSource,
    *,
    max_per_split: int = 0,
    seed: int = 0,
    tfds_load: TfdsLoad | None = None,
    log: logging.Logger | None = logger,
) -> ImdbData:
    """Read, vet, optionally subsample (balanced) and shuffle both splits; log the counts.

    Raises ImdbLayoutError when a split or class is missing or has no usable review: a model trained or evaluated
    on one class only would report a meaningless accuracy instead of failing.
    """
    resolved = resolve_source(source)
    if resolved.kind == TFDS_SOURCE:
        collector = _read_tfds(resolved.tfds_data_dir, tfds_load or _default_tfds_load)
    else:
        assert resolved.path is not None
        collector = _read_layout(resolved.path)
    report = ImdbReport(source=resolved.describe(), splits=collector.reports, ignored=collector.ignored)

    for split, split_report in report.splits.items():
        empty_classes = [name for name, label in CLASSES.items() if split_report.kept_per_label[label] == 0]
        if empty_classes:
            if log is not None:
                report.log(log)
            raise ImdbLayoutError(
                f"IMDB {split}: no usable {'/'.join(empty_classes)} review left after vetting "
                f"({split_report.log_line()}); refusing to train or evaluate on one class"
            )

    splits: dict[str, list[ImdbRecord]] = {}
    for split, records in collector.records.items():
        if max_per_split:
            records = subsample_balanced(records, max_per_split, seed, split)
            split_report = report.splits[split]
            split_report.sampled = len(records)
            split_report.sampled_per_label = Counter(r.label for r in records)
        splits[split] = shuffled(records, seed, split)
    if log is not None:
        report.log(log)
    return ImdbData(splits=splits, report=report)


# --------------------------------------------------------------------------------------------------------------------
# A small, learnable stand-in for the real archive (smoke preset, tests)
# --------------------------------------------------------------------------------------------------------------------

_POSITIVE = (
    "wonderful", "brilliant", "superb", "moving", "delightful", "charming", "gripping", "hilarious", "beautiful",
    "excellent", "touching", "stunning", "memorable", "enjoyable", "fantastic", "clever", "heartfelt", "masterful",
)  # fmt: skip
_NEGATIVE = (
    "awful", "boring", "dreadful", "tedious", "clumsy", "disappointing", "terrible", "lifeless", "predictable",
    "bland", "painful", "stupid", "forgettable", "annoying", "pointless", "horrible", "dull", "incoherent",
)  # fmt: skip
_POSITIVE_VERDICTS = ("I loved it.", "A masterpiece.", "Highly recommended!", "Worth every minute.", "10/10, see it.")
_NEGATIVE_VERDICTS = ("I hated it.", "A waste of time.", "Avoid it.", "Worst film this year.", "Do not bother.")
_NOUNS = (
    "plot", "acting", "script", "ending", "cast", "soundtrack", "dialogue", "direction", "pacing", "cinematography",
    "lead actress", "villain", "story", "editing", "final act",
)  # fmt: skip
_ADVERBS = ("really", "quite", "truly", "rather", "simply", "frankly", "surprisingly", "utterly")
_SETTINGS = (
    "the café scene", "a naïve hero", "Amélie's neighbour", "a sense of déjà vu", "the über-villain", "the façade",
    "Zoë's résumé", "a crème brûlée", "the Björk cameo", "the São Paulo chase", "Señor López", "the Müller brothers",
)  # fmt: skip
_TEMPLATES = (
    "The {noun} was {adverb} {word}.",
    "I thought the {noun} felt {word}.",
    "{Setting} is {adverb} {word}, and so is the {noun}.",
    "Honestly, the {noun} is {word}.",
    "What {a_word} {noun}!",
    "Everything about {setting} was {word}.",
)
_NEUTRAL = (
    "I saw it on a rainy Sunday with friends.",
    "It runs about two hours.",
    "The film is based on a novel I have not read.",
    "My brother recommended it after seeing {setting}.",
    "It was released last year in a few cinemas.",
    "The director also made a documentary about {setting}.",
)


@dataclass(frozen=True)
class SyntheticArchiveInfo:
    """What was written, so tests can assert exact read/kept/dropped counts instead of approximations."""

    path: Path
    n_per_class: int
    seed: int
    bad_files_per_split: dict[str, int]  # drop reason -> files written with that defect, in each split
    ignored_files: int  # files outside {train,test}/{pos,neg}: README, unsup/, urls, vocab

    @property
    def read_per_split(self) -> int:
        return 2 * self.n_per_class + sum(self.bad_files_per_split.values())

    @property
    def kept_per_split(self) -> int:
        return 2 * self.n_per_class

    @property
    def dropped_per_split(self) -> int:
        return sum(self.bad_files_per_split.values())


def _synthetic_review(rng: random.Random, label: int, max_words: int) -> str:
    own, other = (_POSITIVE, _NEGATIVE) if label else (_NEGATIVE, _POSITIVE)
    verdicts = _POSITIVE_VERDICTS if label else _NEGATIVE_VERDICTS
    target = rng.randint(min(12, max_words), max_words)
    sentences: list[str] = []
    words = 0
    while True:
        roll = rng.random()
        word = ""
        if roll < 0.2:
            sentence = rng.choice(_NEUTRAL)
        elif roll < 0.3:
            sentence = rng.choice(verdicts)
        else:
            # Noise: a fifth of sentiment words come from the other side, so the task is learnable but not trivial.
            word = rng.choice(other if rng.random() < 0.2 else own)
            sentence = rng.choice(_TEMPLATES)
        setting = rng.choice(_SETTINGS)
        sentence = sentence.format(
            noun=rng.choice(_NOUNS),
            adverb=rng.choice(_ADVERBS),
            word=word,
            a_word=("an " if word[:1] in "aeiou" else "a ") + word,
            setting=setting,
            Setting=setting[0].upper() + setting[1:],
        )
        n = len(sentence.split())
        if sentences and words + n > max_words:
            break
        sentences.append(sentence)
        words += n
        if words >= target:
            break
    text = sentences[0]
    for sentence in sentences[1:]:
        text += " <br /><br />" + sentence if rng.random() < 0.15 else " " + sentence
    return text


def write_synthetic_archive(
    path: str | os.PathLike[str],
    *,
    n_per_class: int,
    seed: int,
    include_bad_files: bool = True,
    max_words: int = 120,
) -> SyntheticArchiveInfo:
    """Write a small ``aclImdb_v1.tar.gz`` in the official layout, byte-identical for the same arguments.

    Reviews are generated so a classifier can learn them (class-leaning sentiment words with 20% noise) while looking
    like IMDB to the code under test: HTML line breaks, non-ASCII text, varied lengths, class-consistent ratings,
    archive ordered by class, plus README/unsup files that must be ignored. With ``include_bad_files`` each split
    also gets one file per defect the reader must drop (two for ``empty``: empty and whitespace-only).
    """
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be at least 1, got {n_per_class}")
    if max_words < 4:
        raise ValueError(f"max_words must be at least 4, got {max_words}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"imdb-synthetic:{seed}")
    members: list[tuple[str, bytes | None]] = [("aclImdb", None)]  # None: a directory entry
    members.append(("aclImdb/README", b"Synthetic stand-in for the Large Movie Review Dataset v1.0 (tests only).\n"))
    members.append(("aclImdb/imdb.vocab", "\n".join(sorted(_POSITIVE + _NEGATIVE)).encode()))
    bad: Counter[str] = Counter()
    for folder in SPLITS:
        members.append((f"aclImdb/{folder}", None))
        for class_name, label in CLASSES.items():
            directory = f"aclImdb/{folder}/{class_name}"
            members.append((directory, None))
            for index in range(n_per_class):
                rating = rng.choice(RATING_RANGE[label])
                text = _synthetic_review(rng, label, max_words)
                members.append((f"{directory}/{index}_{rating}.txt", text.encode("utf-8")))
            if include_bad_files:
                n = n_per_class
                if label == 1:
                    members.append((f"{directory}/{n}_8.txt", b""))
                    members.append((f"{directory}/{n + 1}_9.txt", "Un film très réussi.".encode("latin-1")))
                    bad.update({EMPTY: 1, NOT_UTF8: 1})
                else:
                    members.append((f"{directory}/{n}_2.txt", b"  \n\t <br /><br /> \n"))
                    members.append((f"{directory}/{n + 1}.txt", b"A dull film, and its file name has no rating."))
                    members.append((f"{directory}/{n + 2}_9.txt", b"A superb film filed under neg, rated 9."))
                    bad.update({EMPTY: 1, NO_RATING: 1, RATING_MISMATCH: 1})
        members.append((f"aclImdb/{folder}/urls_pos.txt", b"http://www.imdb.com/title/tt0000001/usercomments\n"))
    members.append(("aclImdb/train/unsup", None))
    for index in range(2):
        members.append((f"aclImdb/train/unsup/{index}_0.txt", _synthetic_review(rng, index % 2, max_words).encode()))
    ignored = sum(1 for name, data in members if data is not None and _review_location(_relative_parts(name)) is None)
    per_split = {reason: n // len(SPLITS) for reason, n in bad.items()}

    # Fixed gzip and tar timestamps: the same arguments give the same bytes, so cached pipeline runs stay valid.
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1_300_000_000
            info.uname = info.gname = "imdb"
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                archive.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o644
                archive.addfile(info, io.BytesIO(data))
    return SyntheticArchiveInfo(
        path=path, n_per_class=n_per_class, seed=seed, bad_files_per_split=per_split, ignored_files=ignored
    )


def summary(data: ImdbData) -> dict[str, Any]:
    """Plain-dict counts (for artifact properties, JSON and the command line's closing report)."""
    return {
        "source": data.report.source,
        "ignored": data.report.ignored,
        "splits": {
            split: {
                "read": report.read,
                "kept": report.kept,
                "dropped": dict(sorted(report.dropped.items())),
                "sampled": report.sampled,
                "output": report.output,
            }
            for split, report in data.report.splits.items()
        },
    }
