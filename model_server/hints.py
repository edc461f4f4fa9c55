"""Serving hints: what a SavedModel tells the server about its string inputs, beyond their dtypes and shapes.

The server knows no model's feature names. A model version that wants more than dtype and shape checks carries
``assets.extra/model_server.json`` (beside TF Serving's warm-up file; ``assets.extra`` is copied with the model and
ignored by TensorFlow), written at export time by :func:`write_serving_hints` and read when the version loads::

    {
      "format": 1,
      "signatures": {
        "serving_default": {"non_empty_text_inputs": ["text"], "input_features": {"text": "review"}},
        "from_examples": {"example_inputs": {"examples": ["review"]}}
      }
    }

Per signature, every key is optional and names string inputs of that signature:

* ``non_empty_text_inputs``: every value must be UTF-8 text with a non-whitespace character, or the request gets
  400 (``--allow_empty_text`` lifts the non-empty rule, never the UTF-8 one).
* ``input_features``: input -> the raw training feature it carries; the request log writes the input's masked text
  under that name, so TFDV statistics of the log compare directly with the training data's.
* ``example_inputs``: input -> the bytes features of the serialized ``tf.Example`` it carries; synthetic warm-up
  builds Examples with them (the request log masks every bytes feature of these inputs).

A version without the file gets no text rules: every string is accepted as bytes. Keys this server does not know are
logged and ignored (a newer writer may add some); another ``format``, a malformed file, or a hint naming a signature
or input the model lacks fails the load, so a typo cannot silently switch a check off.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from model_server.version_json import (
    read_version_file,
    signature_entries,
    version_file_json,
    warn_unknown_keys,
    write_version_file,
)

HINTS_FILE = os.path.join("assets.extra", "model_server.json")
# By convention, the signature REST ``:explain`` runs (KServe V1's explain verb; the body is that of ``:predict``).
# Its outputs echo the request's words, so the request log leaves its calls out.
EXPLAIN_SIGNATURE = "explain"
FORMAT = 1
_KNOWN_KEYS = ("non_empty_text_inputs", "input_features", "example_inputs")


class HintsError(ValueError):
    """The hints file cannot be used; the message names the file and the offending entry."""


@dataclasses.dataclass(frozen=True)
class SignatureHints:
    """The hints of one signature (all empty: plain dtype and shape checks)."""

    non_empty_text_inputs: tuple[str, ...] = ()
    input_features: Mapping[str, str] = dataclasses.field(default_factory=dict)
    example_inputs: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    def input_names(self) -> set[str]:
        """Every input the hints name (each must be a string input of the signature)."""
        return set(self.non_empty_text_inputs) | set(self.input_features) | set(self.example_inputs)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        if self.non_empty_text_inputs:
            doc["non_empty_text_inputs"] = list(self.non_empty_text_inputs)
        if self.input_features:
            doc["input_features"] = dict(self.input_features)
        if self.example_inputs:
            doc["example_inputs"] = {name: list(features) for name, features in self.example_inputs.items()}
        return doc


def _names(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise HintsError(f"{where} must be a list of non-empty strings")
    return tuple(value)


def _signature_hints(doc: Any, where: str) -> SignatureHints:
    if not isinstance(doc, dict):
        raise HintsError(f"{where} must be an object")
    warn_unknown_keys(doc, _KNOWN_KEYS, where, "hint(s)")
    features = doc.get("input_features", {})
    if not isinstance(features, dict) or not all(isinstance(v, str) and v for v in features.values()):
        raise HintsError(f"{where}.input_features must map input names to feature names")
    examples = doc.get("example_inputs", {})
    if not isinstance(examples, dict):
        raise HintsError(f"{where}.example_inputs must map input names to lists of feature names")
    return SignatureHints(
        non_empty_text_inputs=_names(doc.get("non_empty_text_inputs", []), f"{where}.non_empty_text_inputs"),
        input_features=dict(features),
        example_inputs={k: _names(v, f"{where}.example_inputs.{k}") for k, v in examples.items()},
    )


def parse_serving_hints(text: str, source: str = HINTS_FILE) -> dict[str, SignatureHints]:
    """The hints per signature name, from the file's JSON text; raises :class:`HintsError`."""
    signatures = signature_entries(text, source, FORMAT, HintsError, required=False)
    return {name: _signature_hints(value, f"{source}: signatures.{name}") for name, value in signatures.items()}


def read_serving_hints(version_dir: str) -> dict[str, SignatureHints]:
    """The hints of a model version on local disk; empty when it has no hints file."""
    found = read_version_file(version_dir, HINTS_FILE, HintsError)
    return {} if found is None else parse_serving_hints(*found)


def serving_hints_json(signatures: Mapping[str, SignatureHints]) -> str:
    """The file's text for these hints (what :func:`write_serving_hints` writes)."""
    return version_file_json(FORMAT, {name: hints.to_json() for name, hints in signatures.items()})


def write_serving_hints(export_dir: str, signatures: Mapping[str, SignatureHints]) -> str:
    """Write the hints into a SavedModel directory (local or any TensorFlow file system, e.g. ``gs://``); returns the
    file's path. Call it after the SavedModel is saved, before the version is published."""
    text = serving_hints_json(signatures)
    parse_serving_hints(text)  # what we write, we can read
    return write_version_file(export_dir, HINTS_FILE, text)
