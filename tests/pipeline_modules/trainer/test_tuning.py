"""The Tuner's search space comes from the settings, and its best values reach Trainer on top of the configured ones."""

from __future__ import annotations

import dataclasses

import keras_tuner

from pipeline_modules.config import config_for
from pipeline_modules.encoder import ResolvedEncoder
from pipeline_modules.settings import TrainerSettings
from pipeline_modules.trainer.tuning import search_space, tuned_hyperparameters

ENCODER = ResolvedEncoder(
    path="/encoder", vocab_file="/encoder/vocab.txt", do_lower_case=True, hidden_size=0, handle="x"
)


def _settings(**overrides: object) -> TrainerSettings:
    return TrainerSettings.from_config(config_for("smoke", **overrides), ENCODER)


def test_search_space_is_the_configured_choices() -> None:
    settings = _settings(tuner_learning_rates=(1e-5, 2e-5), tuner_dropouts=(0.0,), tuner_warmup_fractions=(0.1, 0.2))
    space = search_space(settings)
    choices = {hp.name: list(hp.values) for hp in space.space}
    assert choices == {"learning_rate": [1e-5, 2e-5], "dropout": [0.0], "warmup_fraction": [0.1, 0.2]}


def test_best_hyperparameters_override_the_configured_ones() -> None:
    configured = _settings().hyperparameters
    assert tuned_hyperparameters(configured, None) == configured
    assert tuned_hyperparameters(configured, {}) == configured
    # Trainer's `fn_args.hyperparameters`: the best_hyperparameters JSON as Tuner wrote it, or the values alone.
    best = {"space": [], "values": {"learning_rate": 4e-4, "dropout": 0.2, "tuner/trial_id": "1"}}
    expected = dataclasses.replace(configured, learning_rate=4e-4, dropout=0.2)
    assert tuned_hyperparameters(configured, best) == expected
    assert tuned_hyperparameters(configured, best["values"]) == expected
    space = keras_tuner.HyperParameters()
    space.Fixed("learning_rate", 4e-4)
    space.Fixed("dropout", 0.2)
    assert tuned_hyperparameters(configured, space) == expected
