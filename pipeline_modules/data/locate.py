"""Where the IMDB data comes from: flag > $IMDB_ARCHIVE > conventional places under data/ > TensorFlow Datasets.

Deciding the source is separate from reading it, so the command line can stop at once (before any component runs)
with a message that says how to provide the data, and so the pipeline can key TFX's cache on the data's fingerprint.
"""

from __future__ import annotations

import os
import socket
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline_modules.data.layout import ARCHIVE_NAME, DATASET_URL, ImdbDataNotFound, ImdbLayoutError, dataset_root

ENV_VAR = "IMDB_ARCHIVE"
TFDS_NAME = "imdb_reviews"
TFDS_SOURCE = "tfds"
DEFAULT_FLAG = "--imdb-archive"

# Relative to the project root, in the order they are tried.
CONVENTIONAL_PATHS = ("data/aclImdb_v1.tar.gz", "data/aclImdb_v1_labeled.tar.gz", "data/aclImdb")

# Hosts TensorFlow Datasets needs to build imdb_reviews: its prepared-data bucket and the dataset's own download.
TFDS_HOSTS = (("storage.googleapis.com", 443), ("ai.stanford.edu", 80))


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
        dataset_root(path)  # fail now, naming the folder, rather than halfway through a pipeline
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
    for directory, _, names in os.walk(dataset_root(resolved.path)):
        for name in names:
            stat = os.stat(os.path.join(directory, name))
            files += 1
            total += stat.st_size
            latest = max(latest, stat.st_mtime_ns)
    return f"folder:{resolved.path}:files={files}:bytes={total}:latest_mtime_ns={latest}"
