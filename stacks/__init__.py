"""Which TFX stack this interpreter can run, and where its lock is.

Two stacks are supported, chosen by the Python that runs them (and the C library under it):

* **tfx116**: Python 3.11 on any glibc Linux (Debian 12, Ubuntu 22.04, Colab's 2025.07 runtime): TFX 1.16,
  TensorFlow 2.16, protobuf 4, numpy 1.24. TFX 1.16 declares Python < 3.11, so it installs with
  `--ignore-requires-python` (README, "Python versions and Colab").
* **tfx121**: Python 3.10-3.13 on glibc >= 2.39 (Colab's default runtime, Ubuntu 24.04, Debian 13): TFX 1.21,
  TensorFlow 2.21, protobuf 6, numpy 2. Its ml-metadata and TFDV wheels are manylinux_2_39 only.

Each tested combination has a lock (`stacks/locks/<stack>-py<XY>.txt`, every package pinned, `make lock` writes it)
that installs with `--no-deps`, so a new machine gets exactly what CI tested. This module uses the standard library
only: the Makefile and the notebook's first cell call it before anything is installed (`python -m stacks`).
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

LOCK_DIR = Path(__file__).resolve().parent / "locks"
TFX121_MIN_GLIBC = (2, 39)

WHAT_WORKS = (
    "Supported: Python 3.11 on Linux x86_64 (TFX 1.16; e.g. Debian 12, Ubuntu 22.04, Colab runtime version "
    "2025.07), or Python 3.13 on Linux x86_64 with glibc >= 2.39 (TFX 1.21; Ubuntu 24.04, Debian 13, Colab's "
    "default runtime). Python 3.10 and 3.12 with glibc >= 2.39 take TFX 1.21 resolved at install time (untested). "
    "In Colab: Runtime > Change runtime version > 'Latest' (Python 3.13) or '2025.07' (Python 3.11)."
)


# Colab's own kernel and front end. Colab's kernel is built on these exact releases, so an installation into a
# Colab runtime (`--keep-frontend`) leaves them as Colab has them: they serve the notebook, not the pipeline.
NOTEBOOK_FRONTEND = frozenset(
    {
        "ipykernel",
        "ipython",
        "ipywidgets",
        "widgetsnbextension",
        "jupyterlab-widgets",
        "jupyter-client",
        "jupyter-core",
        "jupyter-server",
        "jupyter",
        "jupyterlab",
        "notebook",
        "nbformat",
        "nbclient",
        "nbconvert",
        "tornado",
        "pyzmq",
        "traitlets",
        "comm",
        "debugpy",
        "prompt-toolkit",
        "matplotlib-inline",
    }
)


class UnsupportedStack(RuntimeError):
    """No TFX release installs on this interpreter and C library."""


@dataclass(frozen=True)
class Stack:
    """One installable set: its name, the TFX it brings, and how pip installs it."""

    name: str  # "tfx116" or "tfx121"
    tfx: str
    python: tuple[int, int]
    glibc: tuple[int, int] | None

    @property
    def lock_name(self) -> str:
        return f"{self.name}-py{self.python[0]}{self.python[1]}.txt"

    @property
    def lock(self) -> Path | None:
        """The exact lock for this Python, when one was made and tested; None means: resolve `input` at install."""
        path = LOCK_DIR / self.lock_name
        return path if path.is_file() else None

    @property
    def input(self) -> Path:
        return LOCK_DIR / f"{self.name}.in"

    @property
    def common(self) -> Path:
        return LOCK_DIR / "common.in"

    @property
    def nodeps(self) -> Path:
        return LOCK_DIR / "nodeps.in"

    @property
    def pip_args(self) -> tuple[str, ...]:
        # Only TFX 1.16's own declared bound (<3.11) is skipped; every compiled dependency declares 3.11 itself.
        return ("--ignore-requires-python",) if self.name == "tfx116" else ()

    def describe(self) -> str:
        glibc = ".".join(map(str, self.glibc)) if self.glibc else "unknown"
        lock = self.lock.name if self.lock else f"none for this Python: {self.input.name} is resolved at install"
        return f"{self.name} (TFX {self.tfx}) for Python {self.python[0]}.{self.python[1]}, glibc {glibc}; lock {lock}"


def glibc_version() -> tuple[int, int] | None:
    """The C library's version, e.g. (2, 36); None on a libc that is not glibc (musl, macOS)."""
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError, AttributeError):
        return None
    name, _, version = text.partition(" ")
    if name != "glibc":
        return None
    major, _, minor = version.partition(".")
    try:
        return int(major), int(minor.split(".")[0])
    except ValueError:
        return None


def choose(
    python: tuple[int, int] | None = None, glibc: tuple[int, int] | None | str = "detect", machine: str | None = None
) -> Stack:
    """The stack for this interpreter (or the given one); `UnsupportedStack` with what works otherwise."""
    python = python or (sys.version_info.major, sys.version_info.minor)
    found_glibc = glibc_version() if glibc == "detect" else glibc
    assert not isinstance(found_glibc, str)
    machine = machine or platform.machine()
    here = f"Python {python[0]}.{python[1]}"
    if machine not in ("x86_64", "AMD64"):
        raise UnsupportedStack(f"{here} on {machine}: tensorflow-text publishes no wheels for it. {WHAT_WORKS}")
    if found_glibc is None:
        raise UnsupportedStack(f"{here} without glibc (musl or not Linux): TFX publishes no wheels. {WHAT_WORKS}")
    glibc_text = f"glibc {found_glibc[0]}.{found_glibc[1]}"
    if python == (3, 11):
        return Stack("tfx116", "1.16.0", python, found_glibc)
    if (3, 10) <= python <= (3, 13):
        if found_glibc >= TFX121_MIN_GLIBC:
            return Stack("tfx121", "1.21.0", python, found_glibc)
        raise UnsupportedStack(
            f"{here} with {glibc_text}: no TFX release installs here (TFX 1.16 needs Python 3.11; TFX 1.21's "
            f"ml-metadata and TFDV wheels need glibc >= 2.39). {WHAT_WORKS}"
        )
    raise UnsupportedStack(f"{here}: no TFX release supports it (TFX 1.21 runs on Python 3.10-3.13). {WHAT_WORKS}")


__all__ = ["LOCK_DIR", "NOTEBOOK_FRONTEND", "WHAT_WORKS", "Stack", "UnsupportedStack", "choose", "glibc_version"]
