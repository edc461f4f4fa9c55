"""The settings the module files read: built from PipelineConfig alone, JSON round trips, strict when read back."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from pipeline_modules.config import PipelineConfig, config_for
from pipeline_modules.encoder import ResolvedEncoder
from pipeline_modules.settings import CustomConfigSettings, Hyperparameters, TrainerSettings, TransformSettings

ENCODER = ResolvedEncoder(
    path="/encoders/minilm", vocab_file="/encoders/minilm/assets/vocab.txt", do_lower_case=True, hidden_size=384,
    handle="minilm",
)  # fmt: skip
SETTINGS: tuple[type[CustomConfigSettings], ...] = (TransformSettings, TrainerSettings)
CONFIG_FIELDS = {field.name for field in dataclasses.fields(PipelineConfig)}


def _json_round_trip(custom_config: dict[str, Any]) -> dict[str, Any]:
    """What a component's executor hands the module: TFX stores `custom_config` as a JSON string."""
    return json.loads(json.dumps(custom_config))


@pytest.mark.parametrize("settings_class", SETTINGS)
@pytest.mark.parametrize("preset", ["smoke", "demo", "full"])
def test_round_trip_through_custom_config(settings_class: type[CustomConfigSettings], preset: str) -> None:
    settings = settings_class.from_config(config_for(preset, max_seq_length=64), ENCODER)
    assert settings_class.from_custom_config(_json_round_trip(settings.to_custom_config())) == settings


@pytest.mark.parametrize("settings_class", SETTINGS)
def test_every_field_comes_from_the_config_or_the_encoder(settings_class: type[CustomConfigSettings]) -> None:
    """A new knob is a PipelineConfig field: the settings repeat no default and name no value of their own."""
    # Every config field that feeds settings, set away from its default, so a copied default would show.
    config = config_for(
        "smoke",
        max_seq_length=40, head_fraction=0.4, pooling="cls", dropout=0.15, learning_rate=2e-5, weight_decay=0.02,
        warmup_fraction=0.05, num_epochs=3.0, train_batch_size=5, eval_batch_size=7, jit_compile=True,
        training_precision="mixed_bfloat16", explain_steps=8,
        serving_engine="onnxruntime_int8", int8_max_accuracy_drop=0.01, engine_eval_examples=500,
        learning_rate_schedule="constant", train_length_bucketing=False, serving_length_buckets=(24, 48), seed=99,
        tuner_trials=4, tuner_learning_rates=(1e-5,), tuner_dropouts=(0.3,), tuner_warmup_fractions=(0.2, 0.3),
        encoder_handle="not-the-resolved-handle",
    )  # fmt: skip
    settings = settings_class.from_config(config, ENCODER)
    for field in dataclasses.fields(settings_class):
        assert field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING, field.name
        if field.name in settings_class.ENCODER_FIELDS:
            assert getattr(settings, field.name) == getattr(ENCODER, settings_class.ENCODER_FIELDS[field.name])
        else:
            assert field.name in CONFIG_FIELDS, f"{settings_class.__name__}.{field.name} is no PipelineConfig field"
            assert getattr(settings, field.name) == getattr(config, field.name), field.name
            assert getattr(settings, field.name) != getattr(PipelineConfig(), field.name), field.name


def test_the_configured_length_bucketing_reaches_the_trainer() -> None:
    """The drift this replaced: the trainer module's own fallback said False while PipelineConfig says True."""
    assert TrainerSettings.from_config(PipelineConfig(), ENCODER).train_length_bucketing is True


def test_hyperparameters_are_the_configured_ones_with_tuned_values_on_top() -> None:
    settings = TrainerSettings.from_config(config_for("demo", learning_rate=3e-5, dropout=0.2), ENCODER)
    configured = settings.hyperparameters
    assert configured == Hyperparameters(
        learning_rate=3e-5, dropout=0.2, warmup_fraction=0.1, weight_decay=0.01, num_epochs=1.0
    )
    tuned = configured.with_tuned({"learning_rate": 1e-4, "tuner/trial_id": "3"})
    assert tuned == dataclasses.replace(configured, learning_rate=1e-4)
    assert set(tuned.as_dict()) == {field.name for field in dataclasses.fields(Hyperparameters)}


def test_a_missing_key_is_named() -> None:
    custom = TransformSettings.from_config(config_for("smoke"), ENCODER).to_custom_config()
    del custom["head_fraction"]
    with pytest.raises(ValueError, match=r"TransformSettings: .*missing head_fraction"):
        TransformSettings.from_custom_config(custom)


def test_an_unknown_key_is_named() -> None:
    custom = TrainerSettings.from_config(config_for("smoke"), ENCODER).to_custom_config()
    custom["train_length_bucketting"] = True
    with pytest.raises(ValueError, match=r"TrainerSettings: .*unknown train_length_bucketting"):
        TrainerSettings.from_custom_config(custom)


@pytest.mark.parametrize(
    ("key", "value"),
    [("jit_compile", "false"), ("seed", "7"), ("seed", True), ("serving_length_buckets", 64), ("pooling", 1)],
)
def test_a_value_of_the_wrong_type_is_named(key: str, value: Any) -> None:
    custom = TrainerSettings.from_config(config_for("smoke"), ENCODER).to_custom_config()
    custom[key] = value
    with pytest.raises(ValueError, match=rf"custom_config\['{key}'\]"):
        TrainerSettings.from_custom_config(custom)


def test_custom_config_is_json_with_tuples_as_lists() -> None:
    custom = TrainerSettings.from_config(config_for("demo"), ENCODER).to_custom_config()
    assert _json_round_trip(custom) == custom
    assert custom["serving_length_buckets"] == list(PipelineConfig().serving_length_buckets)
    assert custom["encoder_path"] == ENCODER.path and custom["encoder_handle"] == ENCODER.handle
