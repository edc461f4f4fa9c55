"""The official aclImdb layout: what its folders and file names mean, and the two errors every data module raises.

The layout (Maas et al., 2011; https://ai.stanford.edu/~amaas/data/sentiment/) is
``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`` with ratings 1-4 under ``neg`` and 7-10 under ``pos``. The
official test split becomes the pipeline's ``eval`` split, because the dataset's authors keep train and test disjoint
in movies and a random re-split would leak.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

DATASET_URL = "https://ai.stanford.edu/~amaas/data/sentiment/"
ARCHIVE_NAME = "aclImdb_v1.tar.gz"

# Official split folder -> pipeline split name.
SPLITS = {"train": "train", "test": "eval"}
CLASSES = {"neg": 0, "pos": 1}
# The dataset's own README: negative reviews have a score <= 4 out of 10, positive ones >= 7.
RATING_RANGE = {0: range(1, 5), 1: range(7, 11)}

_FILE_NAME = re.compile(r"^(?P<id>\d+)_(?P<rating>\d+)\.txt$")


class ImdbDataNotFound(FileNotFoundError):
    """No IMDB data could be found, or a path the user named does not exist; the message says how to fix it."""


class ImdbLayoutError(ValueError):
    """The data was found but cannot train a classifier honestly (missing split or class, unreadable archive)."""


def dataset_root(folder: Path) -> Path:
    """The folder holding train/ and test/: the given one, or its aclImdb/ child."""
    if (folder / "aclImdb").is_dir():
        return folder / "aclImdb"
    if (folder / "train").is_dir() or (folder / "test").is_dir():
        return folder
    raise ImdbLayoutError(
        f"{folder} does not look like the IMDB dataset: expected an aclImdb/ folder in it, or train/ and test/ "
        "folders laid out as aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt"
    )


def relative_parts(name: str) -> tuple[str, ...]:
    """Path parts below the dataset root for an archive member ("./aclImdb/train/pos/1_9.txt" -> train, pos, ...)."""
    parts = tuple(p for p in PurePosixPath(name).parts if p not in (".", "/"))
    if parts and parts[0] == "aclImdb":
        parts = parts[1:]
    return parts


def review_location(parts: tuple[str, ...]) -> tuple[str, str, str] | None:
    """(split folder, class folder, file name) when the path is a labeled review file, else None (ignored)."""
    if len(parts) == 3 and parts[0] in SPLITS and parts[1] in CLASSES and parts[2].endswith(".txt"):
        return parts[0], parts[1], parts[2]
    return None


def parse_rating(file_name: str) -> int | None:
    """The star rating in ``<id>_<rating>.txt``, or None when the name carries no rating from 1 to 10."""
    match = _FILE_NAME.match(file_name)
    if match is None:
        return None
    rating = int(match["rating"])
    return rating if 1 <= rating <= 10 else None
