"""What the repository reads from disk and how it schedules loads: version directories, their fingerprints, and the
load options TF Serving's flags set (retries, retry interval, load threads).

Split from :mod:`model_server.repository` so that module keeps to the version life cycle.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from collections.abc import Iterator

Fingerprint = tuple
MAX_VERSION = 2**63 - 1


@dataclasses.dataclass(frozen=True)
class LoadOptions:
    """``--max_num_load_retries``, ``--load_retry_interval_micros``, ``--num_load_threads`` (0: one load at a
    time, as TF Serving's in-line executor) and TF Serving's ``num_initial_load_threads`` for the loads at start-up."""

    max_num_load_retries: int = 0  # TF Serving: 5 (a deliberate difference: fail fast, retry when files change)
    load_retry_interval_seconds: float = 60.0
    num_load_threads: int = 0
    num_initial_load_threads: int = max(1, 4 * (os.cpu_count() or 1))  # TF Serving's ServerCore default


class LoadGate:
    """Limits how many versions load at once, across models: TF Serving's load thread pools."""

    def __init__(self, options: LoadOptions):
        self._initial = threading.BoundedSemaphore(max(1, options.num_initial_load_threads))
        self._steady = threading.BoundedSemaphore(max(1, options.num_load_threads))

    @contextlib.contextmanager
    def slot(self, initial: bool) -> Iterator[None]:
        """One load; ``initial``: part of the start-up load (TF Serving uses a larger pool for it)."""
        semaphore = self._initial if initial else self._steady
        with semaphore:
            yield


def list_versions(base_path: str) -> dict[int, str]:
    """Integer-named subdirectories only; everything else (temp dirs, files, dot names) is ignored."""
    try:
        entries = list(os.scandir(base_path))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    versions: dict[int, str] = {}
    for entry in entries:
        name = entry.name
        if not (name.isascii() and name.isdigit()):
            continue
        version = int(name)
        if version > MAX_VERSION or not entry.is_dir(follow_symlinks=True):
            continue
        # "007" and "7" are the same version for TF Serving; keep the canonical spelling when both exist.
        if version not in versions or name == str(version):
            versions[version] = entry.path
    return versions


def fingerprint(path: str) -> Fingerprint:
    """Names, sizes and modification times of every file: equal on two polls means nobody is writing."""
    items = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for f in sorted(files):
            full = os.path.join(root, f)
            try:
                st = os.stat(full)
            except OSError:
                items.append((os.path.relpath(full, path), -1, -1))
                continue
            items.append((os.path.relpath(full, path), st.st_size, st.st_mtime_ns))
    return tuple(items)


def has_saved_model(path: str) -> bool:
    return any(os.path.isfile(os.path.join(path, f)) for f in ("saved_model.pb", "saved_model.pbtxt"))
