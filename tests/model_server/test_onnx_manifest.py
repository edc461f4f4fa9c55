"""The ONNX engine manifest (model_server/onnx_manifest.py): what the exporter writes, the server reads, and the
engine log line the pipeline's InfraValidator parses."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from model_server.onnx_manifest import (
    DEFAULT_TOLERANCE,
    MANIFEST_FILE,
    ManifestError,
    OnnxSignature,
    WordPieceSpec,
    engine_log_line,
    engines_in_log,
    onnx_manifest_json,
    parse_onnx_manifest,
    read_onnx_manifest,
    write_onnx_manifest,
)

WORDPIECE = WordPieceSpec("assets/vocab.txt", True, 128, 32, ((r"(?i)<\s*br\s*/?\s*>", " "),))
SIGNATURE = OnnxSignature(
    graph="assets.extra/onnx/model.onnx",
    text_input="text",
    tokenize_signature="tokenize",
    precision="int8",
    tolerance=0.02,
    wordpiece=WORDPIECE,
    accuracy={"fp32": 0.874, "int8": 0.872, "examples": 2000},
    measured={"max_abs_diff": 3.1e-07, "examples": 256},
)


def _doc(**entry: Any) -> str:
    base: dict[str, Any] = {"graph": "g.onnx", "text_input": "text", "tokenize_signature": "tokenize"}
    base.update(entry)
    return json.dumps({"format": 1, "signatures": {"serving_default": base}})


def test_round_trip_through_a_version_directory(tmp_path: Path) -> None:
    path = write_onnx_manifest(str(tmp_path), {"serving_default": SIGNATURE})
    assert path == str(tmp_path / MANIFEST_FILE)
    assert read_onnx_manifest(str(tmp_path)) == {"serving_default": SIGNATURE}
    assert parse_onnx_manifest(onnx_manifest_json({"a": SIGNATURE, "b": SIGNATURE})).keys() == {"a", "b"}


def test_defaults_and_no_manifest(tmp_path: Path) -> None:
    assert read_onnx_manifest(str(tmp_path)) == {}
    [sig] = parse_onnx_manifest(_doc()).values()
    assert (sig.precision, sig.tolerance, sig.wordpiece, dict(sig.accuracy)) == ("fp32", DEFAULT_TOLERANCE, None, {})


def test_unknown_keys_are_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    [sig] = parse_onnx_manifest(_doc(future_option=1)).values()
    assert sig.graph == "g.onnx" and "future_option" in caplog.text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ("[]", "must be a JSON object"),
        ('{"format": 2, "signatures": {"s": {}}}', "format 2 is not supported"),
        ('{"format": 1, "signatures": {}}', "'signatures' must be a non-empty object"),
        (_doc(graph="/abs/g.onnx"), "must be a path inside the version directory"),
        (_doc(graph="../g.onnx"), "must be a path inside the version directory"),
        (_doc(text_input=""), "text_input must be a non-empty string"),
        (_doc(precision="fp16"), "precision must be one of fp32, int8"),
        (_doc(precision="int8"), "precision int8 needs accuracy.fp32 and accuracy.int8"),
        (_doc(tolerance=-1), "tolerance must be a number >= 0"),
        (_doc(tolerance=True), "tolerance must be a number >= 0"),
        (_doc(accuracy={"fp32": "high"}), "accuracy must map names to numbers"),
        (_doc(wordpiece=[]), "wordpiece must be an object"),
        (_doc(wordpiece={**WORDPIECE.to_json(), "lower_case": "yes"}), "lower_case must be true or false"),
        (_doc(wordpiece={**WORDPIECE.to_json(), "max_seq_length": 2}), "max_seq_length must be an integer >= 3"),
        (_doc(wordpiece={**WORDPIECE.to_json(), "head_tokens": 127}), "head_tokens must be an integer in"),
        (_doc(wordpiece={**WORDPIECE.to_json(), "replacements": [["x"]]}), "replacements must be a list of"),
    ],
)
def test_malformed_manifests_are_refused(text: str, message: str) -> None:
    with pytest.raises(ManifestError, match="^.*" + message.replace("(", r"\(").replace("[", r"\[")):
        parse_onnx_manifest(text, "m.json")


def test_unreadable_manifest(tmp_path: Path) -> None:
    (tmp_path / "assets.extra").mkdir()
    (tmp_path / MANIFEST_FILE).write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(ManifestError, match="cannot read"):
        read_onnx_manifest(str(tmp_path))


def test_engine_log_lines_parse_back() -> None:
    lines = [
        engine_log_line("bert_imdb", 7, "serving_default", "onnxruntime", "int8", "max |diff| 3e-07 (on 40 checks)"),
        engine_log_line("bert_imdb", 7, "from_examples", "tensorflow", detail="--onnx_engine=off"),
        engine_log_line("m", 1, "s", "tensorflow"),
    ]
    text = "INFO noise\n" + "\n".join(f"2026-01-01 INFO model_server.onnx_engine: {line}" for line in lines) + "\n"
    parsed = engines_in_log(text)
    assert [(p["signature"], p["engine"], p["precision"]) for p in parsed] == [
        ("serving_default", "onnxruntime", "int8"),
        ("from_examples", "tensorflow", ""),
        ("s", "tensorflow", ""),
    ]
    assert parsed[0]["detail"] == "max |diff| 3e-07 [on 40 checks]"  # parentheses cannot end the detail early
    assert parsed[1]["detail"] == "--onnx_engine=off" and parsed[2]["detail"] == ""
    assert (parsed[0]["model"], parsed[0]["version"]) == ("bert_imdb", "7")
    assert engines_in_log("engine: model m version x signature s runs on tensorflow") == []
