"""TFX Trainer and Tuner module: fine-tune a TF Hub-format BERT encoder and a one-logit head on transformed reviews.

The pipeline names these functions by import path (`pipeline_modules.trainer_module.run_fn` / `.tuner_fn`); a user's
own module file (`--trainer-module-file`) may import and wrap them. The parts they assemble live in
`pipeline_modules.trainer` (data, model, distribution, tuning, progress, export); what they read from
`custom_config` is `pipeline_modules.settings.TrainerSettings`.
"""

from __future__ import annotations

import logging

import keras_tuner
import tensorflow as tf
from tensorflow_transform.output_wrapper import TFTransformOutput
from tfx import v1 as tfx

from pipeline_modules.settings import TrainerSettings
from pipeline_modules.trainer.data import count_records, steps_for_epochs, train_and_eval_datasets
from pipeline_modules.trainer.distribution import distribution_strategy, global_batch_sizes
from pipeline_modules.trainer.export import export_serving_model
from pipeline_modules.trainer.model import compile_model, float32_model
from pipeline_modules.trainer.onnx_export import EngineExport
from pipeline_modules.trainer.progress import training_callbacks, write_training_summary
from pipeline_modules.trainer.tuning import random_search, tuned_hyperparameters

logger = logging.getLogger(__name__)


# TFX Trainer calls this.
def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Fine-tune, write TensorBoard logs and the training curve to the model run dir, export with signatures."""
    settings = TrainerSettings.from_custom_config(fn_args.custom_config or {})
    hparams = tuned_hyperparameters(settings.hyperparameters, fn_args.hyperparameters)
    tf.keras.utils.set_random_seed(settings.seed)
    tf_transform_output = TFTransformOutput(fn_args.transform_graph_path)
    strategy = distribution_strategy()
    train_batch, eval_batch = global_batch_sizes(settings, strategy)

    train_steps = int(fn_args.train_steps or 0)
    if train_steps <= 0:
        train_examples = count_records(fn_args.train_files)
        train_steps = steps_for_epochs(hparams.num_epochs, train_examples, train_batch)
        logger.info(
            "Trainer: %d train examples, %s epoch(s) -> %d steps", train_examples, hparams.num_epochs, train_steps
        )
    eval_steps = int(fn_args.eval_steps or 0) or None  # None: the whole eval split
    train_ds, eval_ds = train_and_eval_datasets(fn_args, tf_transform_output, settings, train_batch, eval_batch)

    with strategy.scope():
        model = compile_model(settings, hparams, train_steps)
    logger.info(
        "Trainer: %d steps of %d reviews on %d replica(s) (%s), hyperparameters %s",
        train_steps,
        train_batch,
        strategy.num_replicas_in_sync,
        type(strategy).__name__,
        hparams.as_dict(),
    )
    history = model.fit(
        train_ds,
        epochs=1,
        steps_per_epoch=train_steps,
        validation_data=eval_ds,
        validation_steps=eval_steps,
        callbacks=training_callbacks(fn_args.model_run_dir, train_steps, train_batch),
        verbose=0,
    )
    write_training_summary(fn_args.model_run_dir, history, train_steps, train_batch, hparams)
    # Served as float32 whatever the training precision (mixed precision kept the weights float32 all along).
    serving_model = float32_model(model, settings, hparams.dropout)
    export_serving_model(
        serving_model,
        tf_transform_output,
        settings.serving_length_buckets,
        fn_args.serving_model_dir,
        explain=settings,  # the `explain` signature (integrated gradients) where the encoder is built in-process
        engine=EngineExport.from_settings(settings),  # the ONNX Runtime graph and manifest, likewise
        eval_dataset=eval_ds,
    )


# TFX Tuner calls this.
def tuner_fn(fn_args: tfx.components.FnArgs) -> tfx.components.TunerFnResult:
    """A KerasTuner random search on the preset's trial budget; Tuner hands the best values to Trainer."""
    settings = TrainerSettings.from_custom_config(fn_args.custom_config or {})
    tf_transform_output = TFTransformOutput(fn_args.transform_graph_path)
    strategy = distribution_strategy()
    train_batch, eval_batch = global_batch_sizes(settings, strategy)
    train_steps = int(fn_args.train_steps or 0) or max(count_records(fn_args.train_files) // train_batch, 1)
    fixed = settings.hyperparameters
    train_ds, eval_ds = train_and_eval_datasets(fn_args, tf_transform_output, settings, train_batch, eval_batch)

    def build(hp: keras_tuner.HyperParameters) -> tf.keras.Model:
        with strategy.scope():
            return compile_model(settings, fixed.with_tuned(hp.values), train_steps)

    tuner = random_search(settings, build, fn_args.working_dir)
    logger.info("Tuner: %d trials of %d steps of %d reviews", tuner.oracle.max_trials, train_steps, train_batch)
    return tfx.components.TunerFnResult(
        tuner=tuner,
        fit_kwargs={
            "x": train_ds,
            "validation_data": eval_ds,
            "steps_per_epoch": train_steps,
            "validation_steps": int(fn_args.eval_steps or 0) or None,
            "epochs": 1,
            "verbose": 0,
        },
    )
