"""The pipeline definition: one pure factory that every runner (notebook, command line, Kubeflow) calls.

`create_pipeline` only wires components from a `PipelineConfig` and two things resolved beforehand by the caller
(where the IMDB data is, which encoder to fine-tune); it reads no environment and touches no files, so the same
definition runs under `InteractiveContext`, `LocalDagRunner` or a compiled Kubeflow/Vertex spec.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tensorflow_model_analysis as tfma
from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from pipeline_modules import features
from pipeline_modules.components.anomalies_gate import AnomaliesGate
from pipeline_modules.components.atomic_pusher import Executor as AtomicPusherExecutor
from pipeline_modules.components.imdb_example_gen import ImdbExampleGen
from pipeline_modules.config import PipelineConfig
from pipeline_modules.encoder import ResolvedEncoder

MODULE_DIR = Path(__file__).resolve().parent
TRANSFORM_MODULE_FILE = str(MODULE_DIR / "transform_module.py")
TRAINER_MODULE_FILE = str(MODULE_DIR / "trainer_module.py")
SCHEMA_FILE = str(MODULE_DIR / "schema" / "schema.pbtxt")


def transform_custom_config(config: PipelineConfig, encoder: ResolvedEncoder) -> dict[str, Any]:
    return {
        "vocab_file": encoder.vocab_file,
        "do_lower_case": encoder.do_lower_case,
        "max_seq_length": config.max_seq_length,
        "head_fraction": config.head_fraction,
    }


def trainer_custom_config(config: PipelineConfig, encoder: ResolvedEncoder) -> dict[str, Any]:
    return {
        "encoder_path": encoder.path,
        "encoder_handle": encoder.handle,
        "pooling": config.pooling,
        "dropout": config.dropout,
        "learning_rate": config.learning_rate,
        "weight_decay": config.weight_decay,
        "warmup_fraction": config.warmup_fraction,
        "num_epochs": config.num_epochs,
        "train_batch_size": config.train_batch_size,
        "eval_batch_size": config.eval_batch_size,
        "jit_compile": config.jit_compile,
        "seed": config.seed,
    }


def eval_config(config: PipelineConfig) -> tfma.EvalConfig:
    """TFMA through the `from_examples` signature; blessing needs binary accuracy at or above the preset's bar."""
    accuracy_bar = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": config.accuracy_threshold})
    )
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=features.EXAMPLES_SIGNATURE,
                label_key=features.LABEL_KEY,
                prediction_key=features.PROBABILITY_OUTPUT,
                model_type=tfma.TF_GENERIC,
            )
        ],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[features.RATING_KEY])],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name="ExampleCount"),
                    tfma.MetricConfig(class_name="BinaryAccuracy", threshold=accuracy_bar),
                    tfma.MetricConfig(class_name="AUC"),
                    tfma.MetricConfig(class_name="Precision"),
                    tfma.MetricConfig(class_name="Recall"),
                    tfma.MetricConfig(class_name="Calibration"),
                ]
            )
        ],
    )


def create_pipeline(
    config: PipelineConfig,
    *,
    imdb_source: str,
    encoder: ResolvedEncoder,
    metadata_connection_config: Any | None = None,
) -> tfx.dsl.Pipeline:
    """IMDB reviews in, a fine-tuned BERT sentiment SavedModel pushed to `serving_model/<model_name>/<version>`."""
    example_gen = ImdbExampleGen(
        source=imdb_source,
        max_per_split=config.max_examples_per_split,
        seed=config.data_seed,
    )
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_file = str(config.resolved_path(config.schema_file)) if config.schema_file else SCHEMA_FILE
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_file)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    anomalies_gate = AnomaliesGate(
        anomalies=example_validator.outputs["anomalies"], allow_anomalies=config.allow_anomalies
    )
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        module_file=TRANSFORM_MODULE_FILE,
        custom_config=transform_custom_config(config, encoder),
    )
    transform.add_upstream_node(anomalies_gate)
    trainer = tfx.components.Trainer(
        module_file=TRAINER_MODULE_FILE,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=tfx.proto.TrainArgs(splits=["train"], num_steps=config.train_steps),
        eval_args=tfx.proto.EvalArgs(splits=["eval"], num_steps=config.eval_steps),
        custom_config=trainer_custom_config(config, encoder),
    )
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        eval_config=eval_config(config),
    )
    pusher = tfx.components.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=str(config.push_destination))
        ),
        custom_executor_spec=executor_spec.ExecutorClassSpec(AtomicPusherExecutor),
    )
    components = [
        example_gen,
        statistics_gen,
        schema_gen,
        example_validator,
        anomalies_gate,
        transform,
        trainer,
        evaluator,
        pusher,
    ]
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=str(config.pipeline_root_path),
        components=components,
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.beam_pipeline_args),
    )
