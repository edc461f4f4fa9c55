"""Reading a source (archive, extracted folder, TFDS ``imdb_reviews``) into vetted, balanced, shuffled splits.

Pure Python on purpose (TensorFlow Datasets is imported only on its own code path), so that the TFX component, the
command line and the tests share one reader whose every decision is unit-testable without a pipeline.
"""

from __future__ import annotations

import gzip
import logging
import lzma
import os
import random
import tarfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_modules.data.layout import (
    CLASSES,
    SPLITS,
    ImdbLayoutError,
    dataset_root,
    parse_rating,
    relative_parts,
    review_location,
)
from pipeline_modules.data.locate import TFDS_NAME, TFDS_SOURCE, ImdbSource, resolve_source
from pipeline_modules.data.vet import Collector, ImdbRecord, ImdbReport

logger = logging.getLogger(__name__)

_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error, lzma.LZMAError, OSError)

TfdsLoad = Callable[[str, Path | None], Iterable[Mapping[str, Any]]]


@dataclass
class ImdbData:
    """Records per pipeline split ("train", "eval"), in their final (shuffled) order, with the report."""

    splits: dict[str, list[ImdbRecord]]
    report: ImdbReport


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

                    yield relative_parts(member.name), load
                while is_gzip and stream.read(1 << 20):
                    pass
    except _ARCHIVE_ERRORS as error:
        raise unreadable(error) from error


def _iter_folder(path: Path) -> Iterator[tuple[tuple[str, ...], Callable[[], bytes]]]:
    root = dataset_root(path)
    for directory, subdirs, files in os.walk(root):
        subdirs.sort()
        relative = Path(directory).relative_to(root).parts
        for name in sorted(files):
            file_path = Path(directory) / name
            if not file_path.is_file():
                continue
            yield (*relative, name), file_path.read_bytes


def _read_layout(path: Path) -> Collector:
    items = _iter_folder(path) if path.is_dir() else _iter_archive(path)
    collector = Collector()
    seen: set[tuple[str, str]] = set()
    for parts, load in items:
        location = review_location(parts)
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
            rating=parse_rating(file_name),
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


def _read_tfds(data_dir: Path | None, load: TfdsLoad) -> Collector:
    """TFDS imdb_reviews carries text and label (0 neg, 1 pos) but no star rating: rating 0 means unknown."""
    collector = Collector()
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
