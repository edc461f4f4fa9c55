"""`benchmarks.common.served_engine`: the accuracy train-full.json reports is the served engine's, not the
SavedModel's, when the two differ (an int8 graph behind the Trainer's gate)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from benchmarks.common import served_engine
from model_server.onnx_manifest import write_onnx_manifest
from tests.model_server.test_onnx_manifest import SIGNATURE as INT8  # int8: fp32 0.874, int8 0.872 on 2,000


def test_an_int8_engine_reports_the_gate_accuracy_not_the_evaluator_s(tmp_path: Path) -> None:
    write_onnx_manifest(str(tmp_path), {"serving_default": INT8})
    served = served_engine(str(tmp_path), 0.9315, "serving_default")
    assert served["engine"] == "onnxruntime int8"
    assert served["accuracy"] == 0.872 and served["fp32_accuracy_same_examples"] == 0.874
    assert served["accuracy_examples"] == 2000


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
