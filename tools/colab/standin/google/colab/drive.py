"""`drive.mount(mountpoint)`: `<mountpoint>/MyDrive` becomes the local folder `$COLAB_STANDIN_DRIVE`."""

from __future__ import annotations

import os
from pathlib import Path


def mount(mountpoint: str, force_remount: bool = False, timeout_ms: int = 120000, readonly: bool = False) -> None:
    backing = Path(os.environ["COLAB_STANDIN_DRIVE"])
    backing.mkdir(parents=True, exist_ok=True)
    link = Path(mountpoint) / "MyDrive"
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() and force_remount:
        link.unlink()
    if not link.exists():
        link.symlink_to(backing, target_is_directory=True)
    print(f"Mounted at {mountpoint}")


def flush_and_unmount(timeout_ms: int = 86400000) -> None:
    """Colab writes pending changes back to Drive here; a local folder has none."""
