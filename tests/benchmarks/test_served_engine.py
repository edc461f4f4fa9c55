"""`benchmarks.common.served_engine`: the accuracy train-full.json reports is the served engine's, not the
SavedModel's, when the two differ (an int8 graph behind the Trainer's gate)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from benchmarks.common import served_engine
from model_server.onnx_manifest import OnnxSignature, WordPieceSpec, write_onnx_manifest

INT8 = OnnxSignature(
    graph="assets.extra/onnx/model.onnx",
    text_input="text",
    tokenize_signature="tokenize",
    precision="int8",
    tolerance=0.02,
    wordpiece=WordPieceSpec(vocab="assets/vocab.txt", lower_case=True, max_seq_length=32, head_tokens=8),
    accuracy={"fp32": 0.9312, "int8": 0.9301, "examples": 25000},
    measured={"max_abs_diff": 0.011, "examples": 25004},
)


def test_an_int8_engine_reports_the_gate_accuracy_not_the_evaluator_s(tmp_path: Path) -> None:
    write_onnx_manifest(str(tmp_path), {"serving_default": INT8})
    served = served_engine(str(tmp_path), 0.9315, "serving_default")
    assert served["engine"] == "onnxruntime int8"
    assert served["accuracy"] == 0.9301 and served["fp32_accuracy_same_examples"] == 0.9312
    assert served["accuracy_examples"] == 25000


def test_fp32_and_tensorflow_answer_as_the_saved_model(tmp_path: Path) -> None:
    fp32 = dataclasses.replace(INT8, precision="fp32", tolerance=1e-4, accuracy={})
    write_onnx_manifest(str(tmp_path), {"serving_default": fp32})
    assert served_engine(str(tmp_path), 0.9315, "serving_default") == {
        "engine": "onnxruntime fp32",
        "accuracy": 0.9315,
        "accuracy_source": "Evaluator (the SavedModel)",
    }
    assert served_engine(str(tmp_path), 0.9315, "other")["engine"] == "tensorflow"  # no graph for that signature
    assert served_engine(str(tmp_path / "none"), 0.9, "serving_default")["engine"] == "tensorflow"  # no manifest
    assert served_engine(None, None, "serving_default")["accuracy"] is None  # nothing pushed
