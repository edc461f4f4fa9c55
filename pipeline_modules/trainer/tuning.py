"""The Tuner's search: KerasTuner random search over the hyperparameters that move BERT fine-tuning most."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import keras_tuner
import tensorflow as tf

from pipeline_modules.settings import Hyperparameters, TrainerSettings

logger = logging.getLogger(__name__)

OBJECTIVE = "val_binary_accuracy"


class TfKerasRandomSearch(keras_tuner.RandomSearch):
    """Random search whose trials build and fit tf_keras (Keras 2) models.

    KerasTuner 1.4 imports Keras 3 and rejects any model that is not a Keras 3 `Model`, while TFX 1.16, the encoder's
    layers and `hub.KerasLayer` train with Keras 2; a trial here is simply "build, fit, report the final metrics".
    Each trial builds the Trainer's own model (`compile_model`): the encoder in-process where it can be, at the
    configured `training_precision` and `jit_compile`, so the trials rank what the Trainer will train.
    """

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
        tf.keras.backend.clear_session()
        model = self.hypermodel.build(trial.hyperparameters)
        history = model.fit(*args, **kwargs)
        metrics = {name: float(values[-1]) for name, values in history.history.items()}
        logger.info("Tuner: trial %s %s -> %s", trial.trial_id, trial.hyperparameters.values, metrics)
        return metrics


def search_space(settings: TrainerSettings) -> keras_tuner.HyperParameters:
    """Learning rate, dropout and warm-up: the three that move BERT fine-tuning most on a small budget."""
    space = keras_tuner.HyperParameters()
    space.Choice("learning_rate", list(settings.tuner_learning_rates))
    space.Choice("dropout", list(settings.tuner_dropouts))
    space.Choice("warmup_fraction", list(settings.tuner_warmup_fractions))
    return space


def random_search(
    settings: TrainerSettings, build: Callable[[keras_tuner.HyperParameters], tf.keras.Model], working_dir: str
) -> TfKerasRandomSearch:
    """The preset's trial budget over `search_space`, judged on validation accuracy, reproducible by `seed`."""
    return TfKerasRandomSearch(
        build,
        max_trials=settings.tuner_trials,
        hyperparameters=search_space(settings),
        objective=keras_tuner.Objective(OBJECTIVE, "max"),
        directory=working_dir,
        project_name="bert_imdb_tuning",
        seed=settings.seed,
        overwrite=True,
    )


def tuned_hyperparameters(configured: Hyperparameters, best: Any) -> Hyperparameters:
    """The configured values with the Tuner's best (or imported) ones on top.

    Trainer hands `best` over as the `best_hyperparameters` JSON (a dict, its values under "values") or as
    `keras_tuner.HyperParameters`; None when neither a Tuner nor an import supplied any.
    """
    if not best:
        return configured
    values: Mapping[str, Any] = best.get("values", best) if isinstance(best, Mapping) else best.values
    return configured.with_tuned(values)
