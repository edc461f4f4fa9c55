"""What `create_pipeline` wires, without running it: module functions by import path, typed settings, the Evaluator."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest

from pipeline_modules import pipeline as pipeline_definition
from pipeline_modules.config import PipelineConfig, config_for
from pipeline_modules.encoder import ResolvedEncoder
from pipeline_modules.settings import TrainerSettings, TransformSettings

ENCODER = ResolvedEncoder(
    path="/encoders/minilm", vocab_file="/encoders/minilm/assets/vocab.txt", do_lower_case=True, hidden_size=384,
    handle="minilm",
)  # fmt: skip


def _components(config: PipelineConfig) -> dict[str, Any]:
    built = pipeline_definition.create_pipeline(
        config, imdb_source="tfds", encoder=ENCODER, source_fingerprint="path:tfds"
    )
    return {component.id: component for component in built.components}


@pytest.fixture
def smoke_config(tmp_path: Path) -> PipelineConfig:
    return config_for("smoke", pipeline_root=str(tmp_path / "root"), serving_model_dir=str(tmp_path / "serving"))


@pytest.mark.parametrize(
    "import_path", [pipeline_definition.PREPROCESSING_FN, pipeline_definition.RUN_FN, pipeline_definition.TUNER_FN]
)
def test_module_functions_resolve_by_import_path(import_path: str) -> None:
    module, name = import_path.rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), name))


def test_transform_tuner_and_trainer_name_their_functions_by_import_path(smoke_config: PipelineConfig) -> None:
    components = _components(smoke_config)
    expected = {
        "Transform": ("preprocessing_fn", pipeline_definition.PREPROCESSING_FN),
        "Tuner": ("tuner_fn", pipeline_definition.TUNER_FN),
        "Trainer": ("run_fn", pipeline_definition.RUN_FN),
    }
    for component_id, (key, import_path) in expected.items():
        properties = components[component_id].exec_properties
        assert properties[key] == import_path
        assert not properties.get("module_file")


def test_components_get_the_settings_of_the_config(smoke_config: PipelineConfig) -> None:
    components = _components(smoke_config)
    transform = json.loads(components["Transform"].exec_properties["custom_config"])
    assert TransformSettings.from_custom_config(transform) == TransformSettings.from_config(smoke_config, ENCODER)
    for component_id in ("Tuner", "Trainer"):
        trainer = json.loads(components[component_id].exec_properties["custom_config"])
        assert TrainerSettings.from_custom_config(trainer) == TrainerSettings.from_config(smoke_config, ENCODER)


def test_own_trainer_module_file_goes_in_as_module_file(smoke_config: PipelineConfig, tmp_path: Path) -> None:
    own = tmp_path / "my_trainer.py"
    own.write_text("from pipeline_modules.trainer_module import run_fn, tuner_fn  # noqa: F401\n")
    components = _components(
        config_for("smoke", pipeline_root=smoke_config.pipeline_root, trainer_module_file=str(own))
    )
    for component_id, key in (("Tuner", "tuner_fn"), ("Trainer", "run_fn")):
        properties = components[component_id].exec_properties
        assert properties["module_file"] == str(own)
        assert not properties.get(key)
    assert components["Transform"].exec_properties["preprocessing_fn"] == pipeline_definition.PREPROCESSING_FN


def test_eval_config_gates_overall_accuracy_against_bar_and_baseline() -> None:
    config = config_for("demo", accuracy_threshold=0.8, baseline_tolerance=0.02)
    eval_config = pipeline_definition.eval_config(config)
    assert [spec.is_baseline for spec in eval_config.model_specs] == [False, True]
    assert {spec.model_type for spec in eval_config.model_specs} == {"tf_generic"}
    (accuracy,) = [m for m in eval_config.metrics_specs[0].metrics if m.class_name == "BinaryAccuracy"]
    (gate,) = accuracy.per_slice_thresholds
    assert list(gate.slicing_specs) == [type(gate.slicing_specs[0])()]  # the overall slice only
    assert gate.threshold.value_threshold.lower_bound.value == pytest.approx(0.8)
    assert gate.threshold.change_threshold.absolute.value == pytest.approx(-0.02)
