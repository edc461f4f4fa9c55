"""InfraValidator records what served: the engine per signature from the server's log, the tolerance of that engine,
the measured difference from the SavedModel, and the exporter's accuracy figures, in its report and the InfraBlessing.

The log-text tests build the server's engine lines with `engine_log_line`; the served tests start the real model
server on the Trainer's export of the tiny in-process BERT (`test_onnx_export`'s fixtures).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from tfx.types.standard_artifacts import InfraBlessing

from model_server.onnx_manifest import MANIFEST_FILE, OnnxSignature, engine_log_line
from pipeline_modules import features
from pipeline_modules.components import serving_engines
from pipeline_modules.components.infra_validator import record_engines, validate_with_model_server
from tests.pipeline_modules.trainer.test_cross_stack_scores import (  # noqa: F401 - fixtures used by name
    REVIEWS,
    smoke_config,
    tiny_encoder,
    transform_output,
)
from tests.pipeline_modules.trainer.test_onnx_export import (  # noqa: F401 - fixtures used by name
    eval_batches,
    exported,
    model,
)

MODEL = "bert_imdb"
SERVING = features.SERVING_SIGNATURE
INT8 = OnnxSignature(
    graph="assets.extra/onnx/model.onnx",
    text_input="text",
    tokenize_signature="tokenize",
    precision="int8",
    tolerance=0.02,
    accuracy={"fp32": 0.874, "int8": 0.872, "examples": 2000, "max_drop": 0.003},
    measured={"max_abs_diff": 0.013, "examples": 2005},
)


def _log(*lines: str) -> str:
    return "\n".join(["INFO model_server: loading", *lines, "INFO model_server: AVAILABLE"])


def test_an_onnx_signature_is_checked_with_the_manifests_tolerance_and_recorded() -> None:
    log = _log(
        engine_log_line("other_model", 1, SERVING, "tensorflow", detail="not this model"),
        engine_log_line(MODEL, 1, SERVING, "tensorflow", detail="superseded by the reload below"),
        engine_log_line(MODEL, 1, SERVING, "onnxruntime", "int8", "load check: max |diff| 1.1e-02 on 24 texts"),
    )
    engines = serving_engines.served_engines({SERVING: INT8}, log, MODEL, 1)
    assert list(engines) == [SERVING]
    entry = engines[SERVING]
    assert (entry["engine"], entry["precision"], entry["tolerance"]) == ("onnxruntime", "int8", 0.02)
    assert entry["accuracy"] == {"fp32": 0.874, "int8": 0.872, "examples": 2000.0, "max_drop": 0.003}
    assert entry["manifest"] == {"precision": "int8", "tolerance": 0.02, "max_abs_diff": 0.013, "examples": 2005.0}
    assert serving_engines.check_tolerance(engines, SERVING, 1e-4) == 0.02
    assert not serving_engines.runs_on_tensorflow(engines, SERVING)

    entry.update(max_abs_diff=0.0123, checked_tolerance=0.02)  # what validate_with_model_server adds
    blessing = InfraBlessing()
    record_engines(blessing, {"engines": engines})
    assert blessing.get_string_custom_property(serving_engines.ENGINE_KEY) == "onnxruntime int8"
    assert blessing.get_string_custom_property(serving_engines.MAX_ABS_DIFF_KEY) == "0.0123"
    assert blessing.get_float_custom_property("engine_accuracy_int8") == pytest.approx(0.872)
    assert blessing.get_float_custom_property("engine_accuracy_fp32") == pytest.approx(0.874)
    assert "load check" in blessing.get_string_custom_property(serving_engines.ENGINE_DETAIL_KEY)
    assert json.loads(blessing.get_string_custom_property(serving_engines.ENGINES_KEY)) == engines
    assert serving_engines.summary(engines, SERVING) == (
        "serving_default on onnxruntime int8 (max |diff| 1.2e-02 vs the SavedModel, tolerance 0.02)"
    )


def test_a_fallback_to_tensorflow_keeps_the_strict_tolerance_and_says_why() -> None:
    log = _log(engine_log_line(MODEL, 1, SERVING, "tensorflow", detail="load check: max |diff| 3e-02 > 0.02"))
    engines = serving_engines.served_engines({SERVING: INT8}, log, MODEL, 1)
    entry = engines[SERVING]
    assert (entry["engine"], entry["precision"], "tolerance" in entry) == ("tensorflow", "", False)
    assert serving_engines.check_tolerance(engines, SERVING, 1e-4) == 1e-4
    assert serving_engines.runs_on_tensorflow(engines, SERVING)
    blessing = InfraBlessing()
    record_engines(blessing, {"engines": engines})
    assert blessing.get_string_custom_property(serving_engines.ENGINE_KEY) == "tensorflow"
    assert "engine_accuracy_int8" not in blessing.mlmd_artifact.custom_properties  # int8 did not serve
    assert "the manifest asked for onnxruntime int8: load check" in serving_engines.summary(engines, SERVING)
    # a server that logs no engine line (no ONNX support) serves TensorFlow, and the record says so
    silent = serving_engines.served_engines({SERVING: INT8}, _log(), MODEL, 1)[SERVING]
    assert (silent["engine"], silent["detail"]) == ("tensorflow", serving_engines.NO_ENGINE_LINE)


def test_an_unreadable_manifest_is_recorded(tmp_path: Path) -> None:
    (tmp_path / "assets.extra").mkdir()
    (tmp_path / MANIFEST_FILE).write_text('{"format": 99}')
    manifest, error = serving_engines.read_manifest(str(tmp_path))
    assert manifest == {} and "format 99" in error
    engines = serving_engines.served_engines(manifest, _log(), MODEL, 1, error)
    assert engines["_manifest"]["engine"] == "tensorflow" and "format 99" in engines["_manifest"]["detail"]
    assert serving_engines.read_manifest(str(tmp_path / "nothing")) == ({}, "")


def _validate(version_dir: str, workdir: Path) -> dict[str, Any]:
    return validate_with_model_server(
        version_dir, REVIEWS, model_name=MODEL, load_deadline_s=180, tolerance=1e-4, workdir=str(workdir)
    )


def test_the_served_onnx_engine_is_validated_and_recorded(exported: str, tmp_path: Path) -> None:  # noqa: F811
    report = _validate(exported, tmp_path)
    entry = report["engines"][SERVING]
    assert (entry["engine"], entry["precision"]) == ("onnxruntime", "fp32"), entry
    assert entry["checked_tolerance"] == entry["tolerance"] == 1e-4
    assert 0.0 <= entry["max_abs_diff"] <= 1e-4
    assert report["shutdown_exit_code"] == 0 and report["requests"] == len(REVIEWS)
    blessing = InfraBlessing()
    record_engines(blessing, report)
    assert blessing.get_string_custom_property(serving_engines.ENGINE_KEY) == "onnxruntime fp32"
    recorded = float(blessing.get_string_custom_property(serving_engines.MAX_ABS_DIFF_KEY))
    assert recorded == pytest.approx(entry["max_abs_diff"], rel=1e-2)  # kept to its digits, however small


def test_a_manifest_the_server_refuses_is_served_by_tensorflow_and_still_validated(
    exported: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    version = tmp_path / "model" / "1"
    shutil.copytree(exported, version)
    manifest = json.loads((version / MANIFEST_FILE).read_text())
    manifest["signatures"][SERVING]["tolerance"] = 0.0  # no float engine agrees exactly: the load check fails
    (version / MANIFEST_FILE).write_text(json.dumps(manifest))
    report = _validate(str(version), tmp_path / "work")
    entry = report["engines"][SERVING]
    assert entry["engine"] == "tensorflow" and entry["detail"], entry
    assert entry["checked_tolerance"] == 1e-4 and entry["max_abs_diff"] <= 1e-6  # TensorFlow: the SavedModel itself
    assert "the manifest asked for onnxruntime fp32" in serving_engines.summary(report["engines"], SERVING)


def test_a_served_int8_engine_is_held_to_its_tolerance_and_its_accuracy_recorded(
    exported: str,  # noqa: F811
    model,  # noqa: F811
    smoke_config,  # noqa: F811
    tiny_encoder,  # noqa: F811
    eval_batches,  # noqa: F811
    tmp_path: Path,
) -> None:
    from pipeline_modules.trainer.onnx_export import export_onnx_engine
    from tests.pipeline_modules.trainer.test_onnx_export import _engine

    version = tmp_path / "model" / "1"
    shutil.copytree(exported, version)
    engine = _engine(tiny_encoder, smoke_config, "onnxruntime_int8", max_drop=1.0)
    exported_int8 = export_onnx_engine(model, str(version), engine, 32, eval_batches).signature
    assert exported_int8 is not None and exported_int8.precision == "int8"
    report = _validate(str(version), tmp_path / "work")
    entry = report["engines"][SERVING]
    assert (entry["engine"], entry["precision"]) == ("onnxruntime", "int8"), entry
    assert entry["checked_tolerance"] == exported_int8.tolerance > 1e-4
    assert 1e-4 < entry["max_abs_diff"] <= exported_int8.tolerance  # int8 differs, within what the exporter measured
    assert entry["accuracy"] == dict(exported_int8.accuracy)
    blessing = InfraBlessing()
    record_engines(blessing, report)
    assert blessing.get_string_custom_property(serving_engines.ENGINE_KEY) == "onnxruntime int8"
    assert blessing.get_float_custom_property("engine_accuracy_int8") == exported_int8.accuracy["int8"]
