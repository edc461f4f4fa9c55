"""The ONNX engine manifest: which signatures of a SavedModel version may run in ONNX Runtime, and how.

A model version that ships an ONNX graph of its network beside the SavedModel says so in
``assets.extra/onnx_engine.json`` (``assets.extra`` travels with the version and TensorFlow ignores it), written at
export time by :func:`write_onnx_manifest`::

    {
      "format": 1,
      "signatures": {
        "serving_default": {
          "graph": "assets.extra/onnx/model.onnx",
          "precision": "fp32",
          "text_input": "text",
          "tokenize_signature": "tokenize",
          "tolerance": 0.0001,
          "wordpiece": {"vocab": "assets/vocab.txt", "lower_case": true, "max_seq_length": 128, "head_tokens": 32,
                        "replacements": [["(?i)<\\\\s*br\\\\s*/?\\\\s*>", " "]]},
          "measured": {"max_abs_diff": 3.1e-07, "examples": 256}
        }
      }
    }

Per signature:

* ``graph``: the ONNX file, relative to the version directory. Its inputs are the outputs of the tokenize signature
  (e.g. ``input_word_ids``, ``input_mask``, ``input_type_ids``, int64 ``[batch, length]``, any length); its outputs
  include every output of the accelerated signature, by name and dtype (strings too), so the server returns what the
  graph computes and nothing else.
* ``text_input``: the signature's one string input (``[batch]`` texts).
* ``tokenize_signature``: a signature of the same SavedModel from that text input (same name) to the graph's inputs;
  it is the exact tokenization and the fallback for any text the fast tokenizer does not take.
* ``tolerance``: the largest absolute difference from the SavedModel allowed on numeric outputs (non-numeric outputs
  must be equal); the server checks it at load and serves the signature with TensorFlow when it does not hold.
* ``precision``: ``fp32`` or ``int8``; a lower precision than fp32 must carry ``accuracy`` (see below).
* ``wordpiece`` (optional): a BERT WordPiece tokenization that the server may run itself (Hugging Face
  ``tokenizers``) for texts of printable ASCII, whose tokens it verifies against ``tokenize_signature`` at load:
  ``vocab`` (relative path), ``lower_case``, ``max_seq_length`` (with [CLS] and [SEP]), ``head_tokens`` (a longer
  text keeps its first ``head_tokens`` and its last ``max_seq_length - 2 - head_tokens`` word pieces), and
  ``replacements`` (regular expressions applied before tokenizing, in order).
* ``accuracy`` (optional; required below fp32): what the exporter measured on the eval split, e.g.
  ``{"fp32": 0.874, "int8": 0.872, "examples": 2000, "max_drop": 0.003}``.
* ``measured`` (optional): the exporter's own agreement figures, reported in the server's log and status.

Keys this server does not know are logged and ignored; another ``format`` or a malformed entry fails the manifest
(the server then serves the version with TensorFlow and says why).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from typing import Any

from model_server.version_json import (
    read_version_file,
    signature_entries,
    version_file_json,
    warn_unknown_keys,
    write_version_file,
)

MANIFEST_FILE = os.path.join("assets.extra", "onnx_engine.json")
FORMAT = 1
PRECISIONS = ("fp32", "int8")
# precision -> the engine's name in metrics and the Trainer's `serving_engine` ("tensorflow" for the SavedModel)
ENGINE_NAMES = {"fp32": "onnxruntime", "int8": "onnxruntime_int8"}
TENSORFLOW = "tensorflow"
DEFAULT_TOLERANCE = 1e-4  # fp32 engines: TF and ONNX Runtime differ by float rounding only
_SIGNATURE_KEYS = (
    "graph",
    "precision",
    "text_input",
    "tokenize_signature",
    "tolerance",
    "wordpiece",
    "accuracy",
    "measured",
)
_WORDPIECE_KEYS = ("vocab", "lower_case", "max_seq_length", "head_tokens", "replacements")


class ManifestError(ValueError):
    """The manifest cannot be used; the message names the file and the offending entry."""


@dataclasses.dataclass(frozen=True)
class WordPieceSpec:
    """A BERT WordPiece tokenization the server can run without TensorFlow (for printable-ASCII texts)."""

    vocab: str
    lower_case: bool
    max_seq_length: int
    head_tokens: int
    replacements: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "vocab": self.vocab,
            "lower_case": self.lower_case,
            "max_seq_length": self.max_seq_length,
            "head_tokens": self.head_tokens,
            "replacements": [list(r) for r in self.replacements],
        }


@dataclasses.dataclass(frozen=True)
class OnnxSignature:
    """How one signature runs in ONNX Runtime (see the module docstring for each field)."""

    graph: str
    text_input: str
    tokenize_signature: str
    precision: str = "fp32"
    tolerance: float = DEFAULT_TOLERANCE
    wordpiece: WordPieceSpec | None = None
    accuracy: Mapping[str, float] = dataclasses.field(default_factory=dict)
    measured: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "graph": self.graph,
            "precision": self.precision,
            "text_input": self.text_input,
            "tokenize_signature": self.tokenize_signature,
            "tolerance": self.tolerance,
        }
        if self.wordpiece is not None:
            doc["wordpiece"] = self.wordpiece.to_json()
        if self.accuracy:
            doc["accuracy"] = dict(self.accuracy)
        if self.measured:
            doc["measured"] = dict(self.measured)
        return doc


def _string(doc: Mapping[str, Any], key: str, where: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise ManifestError(f"{where}.{key} must be a non-empty string")
    return value


def _relative_path(doc: Mapping[str, Any], key: str, where: str) -> str:
    value = _string(doc, key, where)
    if os.path.isabs(value) or ".." in value.replace("\\", "/").split("/"):
        raise ManifestError(f"{where}.{key} must be a path inside the version directory, got {value!r}")
    return value


def _numbers(value: Any, where: str) -> dict[str, float]:
    if not isinstance(value, dict) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values()
    ):
        raise ManifestError(f"{where} must map names to numbers")
    return {str(k): float(v) for k, v in value.items()}


def _positive_int(doc: Mapping[str, Any], key: str, where: str, minimum: int = 1) -> int:
    value = doc.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ManifestError(f"{where}.{key} must be an integer >= {minimum}, got {value!r}")
    return value


def _wordpiece(doc: Any, where: str) -> WordPieceSpec:
    if not isinstance(doc, dict):
        raise ManifestError(f"{where} must be an object")
    warn_unknown_keys(doc, _WORDPIECE_KEYS, where)
    if not isinstance(doc.get("lower_case"), bool):
        raise ManifestError(f"{where}.lower_case must be true or false")
    max_seq_length = _positive_int(doc, "max_seq_length", where, minimum=3)
    head_tokens = doc.get("head_tokens")
    if not isinstance(head_tokens, int) or isinstance(head_tokens, bool) or not 0 <= head_tokens <= max_seq_length - 2:
        raise ManifestError(f"{where}.head_tokens must be an integer in [0, max_seq_length - 2], got {head_tokens!r}")
    replacements = doc.get("replacements", [])
    if not isinstance(replacements, list) or not all(
        isinstance(r, list) and len(r) == 2 and all(isinstance(s, str) for s in r) for r in replacements
    ):
        raise ManifestError(f"{where}.replacements must be a list of [pattern, replacement] pairs")
    return WordPieceSpec(
        vocab=_relative_path(doc, "vocab", where),
        lower_case=doc["lower_case"],
        max_seq_length=max_seq_length,
        head_tokens=head_tokens,
        replacements=tuple((p, r) for p, r in replacements),
    )


def _signature(doc: Any, where: str) -> OnnxSignature:
    if not isinstance(doc, dict):
        raise ManifestError(f"{where} must be an object")
    warn_unknown_keys(doc, _SIGNATURE_KEYS, where)
    precision = doc.get("precision", "fp32")
    if precision not in PRECISIONS:
        raise ManifestError(f"{where}.precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    tolerance = doc.get("tolerance", DEFAULT_TOLERANCE)
    if not isinstance(tolerance, (int, float)) or isinstance(tolerance, bool) or not tolerance >= 0:
        raise ManifestError(f"{where}.tolerance must be a number >= 0, got {tolerance!r}")
    accuracy = _numbers(doc.get("accuracy", {}), f"{where}.accuracy")
    if precision != "fp32" and not {"fp32", precision} <= set(accuracy):
        raise ManifestError(f"{where}: precision {precision} needs accuracy.fp32 and accuracy.{precision}")
    return OnnxSignature(
        graph=_relative_path(doc, "graph", where),
        text_input=_string(doc, "text_input", where),
        tokenize_signature=_string(doc, "tokenize_signature", where),
        precision=precision,
        tolerance=float(tolerance),
        wordpiece=None if doc.get("wordpiece") is None else _wordpiece(doc["wordpiece"], f"{where}.wordpiece"),
        accuracy=accuracy,
        measured=_numbers(doc.get("measured", {}), f"{where}.measured"),
    )


def parse_onnx_manifest(text: str, source: str = MANIFEST_FILE) -> dict[str, OnnxSignature]:
    """The ONNX signatures by name, from the manifest's JSON text; raises :class:`ManifestError`."""
    signatures = signature_entries(text, source, FORMAT, ManifestError, required=True)
    return {name: _signature(value, f"{source}: signatures.{name}") for name, value in signatures.items()}


def read_onnx_manifest(version_dir: str) -> dict[str, OnnxSignature]:
    """The manifest of a model version on local disk; empty when the version has none."""
    found = read_version_file(version_dir, MANIFEST_FILE, ManifestError)
    return {} if found is None else parse_onnx_manifest(*found)


def onnx_manifest_json(signatures: Mapping[str, OnnxSignature]) -> str:
    return version_file_json(FORMAT, {name: sig.to_json() for name, sig in signatures.items()})


def write_onnx_manifest(export_dir: str, signatures: Mapping[str, OnnxSignature]) -> str:
    """Write the manifest into a SavedModel directory (local or any TensorFlow file system); returns its path. Call
    it after the graph files are in place, before the version is published."""
    text = onnx_manifest_json(signatures)
    parse_onnx_manifest(text)  # what we write, we can read
    return write_version_file(export_dir, MANIFEST_FILE, text)


# The server logs one line per accelerated signature when a version loads, in this form, so that whoever started the
# server (the pipeline's InfraValidator, a benchmark) can tell which engine answers without a private API.
ENGINE_LOG_PREFIX = "engine:"
_ENGINE_LINE = re.compile(
    r"engine: model (?P<model>\S+) version (?P<version>\d+) signature (?P<signature>\S+) "
    r"runs on (?P<engine>onnxruntime|tensorflow)(?: (?P<precision>fp32|int8))?(?: \((?P<detail>[^)]*)\))?"
)


def engine_log_line(
    model: str, version: int, signature: str, engine: str, precision: str | None = None, detail: str = ""
) -> str:
    """The line the server logs for one signature of one loaded version (see :func:`engines_in_log`)."""
    line = f"{ENGINE_LOG_PREFIX} model {model} version {version} signature {signature} runs on {engine}"
    if precision:
        line += f" {precision}"
    if detail:
        line += f" ({detail.replace('(', '[').replace(')', ']')})"
    return line


def engines_in_log(text: str) -> list[dict[str, str]]:
    """Every engine line in a server log, oldest first: model, version, signature, engine, precision, detail."""
    return [{k: v or "" for k, v in m.groupdict().items()} for m in _ENGINE_LINE.finditer(text)]
