"""The JSON files a model version carries in ``assets.extra`` for this server, one mechanism for all of them.

Serving hints (:mod:`model_server.hints`) and the ONNX engine manifest (:mod:`model_server.onnx_manifest`) are both
``{"format": N, "signatures": {name: entry}}``, written at export time (any TensorFlow file system) and read when a
version loads (local disk). This module holds what they share: reading, the envelope checks, the unknown-key warning
and writing; each file's module parses its own entries and raises its own error type.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection, Mapping
from typing import Any

log = logging.getLogger(__name__)


def read_version_file(version_dir: str, relative_path: str, error: type[ValueError]) -> tuple[str, str] | None:
    """The file's text and path in a local version directory; None when the version has no such file."""
    path = os.path.join(version_dir, relative_path)
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(), path
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read {path}: {exc}") from None


def signature_entries(
    text: str, source: str, version: int, error: type[ValueError], *, required: bool
) -> dict[str, Any]:
    """The ``signatures`` object of a document of this ``format`` (``required``: present and non-empty)."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise error(f"{source}: not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise error(f"{source}: must be a JSON object")
    if doc.get("format") != version:
        raise error(f"{source}: format {doc.get('format')!r} is not supported (this server reads {version})")
    if required:
        signatures = doc.get("signatures")
        if not isinstance(signatures, dict) or not signatures:
            raise error(f"{source}: 'signatures' must be a non-empty object")
    else:
        signatures = doc.get("signatures", {})
        if not isinstance(signatures, dict):
            raise error(f"{source}: 'signatures' must be an object")
    return signatures


def warn_unknown_keys(doc: Mapping[str, Any], known: Collection[str], where: str, what: str = "key(s)") -> None:
    """Keys a newer writer may have added are logged and ignored, never fatal."""
    unknown = sorted(set(doc) - set(known))
    if unknown:
        log.warning("%s: ignoring unknown %s %s", where, what, ", ".join(unknown))


def version_file_json(version: int, signatures: Mapping[str, Any]) -> str:
    """The file's text: the format and the signatures' entries (already JSON values), sorted and indented."""
    return json.dumps({"format": version, "signatures": dict(signatures)}, indent=2, sort_keys=True) + "\n"


def write_version_file(export_dir: str, relative_path: str, text: str) -> str:
    """Write ``text`` into a SavedModel directory (local or any TensorFlow file system, e.g. ``gs://``); returns the
    file's path."""
    import tensorflow as tf

    path = os.path.join(export_dir, relative_path)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(text)
    return path
