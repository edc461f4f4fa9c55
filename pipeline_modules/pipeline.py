"""The pipeline definition: one pure factory that every runner (notebook, command line, Kubeflow) calls.

`create_pipeline` only wires components from a `PipelineConfig` and two things resolved beforehand by the caller
(where the IMDB data is, which encoder to fine-tune); it reads no environment and touches no files, so the same
definition runs under `InteractiveContext`, `LocalDagRunner` or a compiled Kubeflow/Vertex spec.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tensorflow_model_analysis import constants as tfma_constants
from tensorflow_model_analysis.proto import config_pb2
from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from pipeline_modules import data as imdb_data
from pipeline_modules import features
from pipeline_modules.components.anomalies_gate import AnomaliesGate
from pipeline_modules.components.atomic_pusher import Executor as AtomicPusherExecutor
from pipeline_modules.components.imdb_example_gen import ImdbExampleGen
from pipeline_modules.components.infra_validator import ModelServerInfraValidator
from pipeline_modules.config import PipelineConfig
from pipeline_modules.encoder import ResolvedEncoder
from pipeline_modules.scoring.bulk_inference import bulk_inference_components
from pipeline_modules.settings import TrainerSettings, TransformSettings

MODULE_DIR = Path(__file__).resolve().parent
SCHEMA_FILE = str(MODULE_DIR / "schema" / "schema.pbtxt")
# Transform's and Trainer's functions by import path: the package is installed wherever the components run
# (pip install -e . here, pip install . in the pipeline image), so no component names a module file of this checkout.
PREPROCESSING_FN = "pipeline_modules.transform_module.preprocessing_fn"
RUN_FN = "pipeline_modules.trainer_module.run_fn"
TUNER_FN = "pipeline_modules.trainer_module.tuner_fn"


def _trainer_module(config: PipelineConfig, fn_name: str, import_path: str) -> dict[str, Any]:
    """How Tuner/Trainer find `fn_name`: this package's by import path, or a user's own `trainer_module_file`."""
    if config.trainer_module_file:
        return {"module_file": config.resolved_uri(config.trainer_module_file)}
    return {fn_name: import_path}


def eval_config(config: PipelineConfig) -> config_pb2.EvalConfig:
    """TFMA through `from_examples`, overall and per length bucket and star rating, against the latest blessed model.

    Blessing needs binary accuracy at or above the preset's bar and no more than `baseline_tolerance` below the
    baseline's; without a baseline (the first run) TFX drops the comparison and the bar alone decides. Built from
    TFMA's protos, not `tfma.*` re-exports, which TFMA 0.52 (the TFX 1.21 stack) no longer has.
    """
    model_spec = {
        "signature_name": features.EXAMPLES_SIGNATURE,
        "label_key": features.LABEL_KEY,
        "prediction_key": features.PROBABILITY_OUTPUT,
        "model_type": tfma_constants.TF_GENERIC,
    }
    accuracy_gate = config_pb2.MetricThreshold(
        value_threshold=config_pb2.GenericValueThreshold(lower_bound={"value": config.accuracy_threshold}),
        change_threshold=config_pb2.GenericChangeThreshold(
            direction=config_pb2.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -config.baseline_tolerance}
        ),
    )
    return config_pb2.EvalConfig(
        model_specs=[
            config_pb2.ModelSpec(name="candidate", **model_spec),
            config_pb2.ModelSpec(name="baseline", is_baseline=True, **model_spec),
        ],
        slicing_specs=[
            config_pb2.SlicingSpec(),
            config_pb2.SlicingSpec(feature_keys=[features.LENGTH_BUCKET_KEY]),
            config_pb2.SlicingSpec(feature_keys=[features.RATING_KEY]),
        ],
        metrics_specs=[
            config_pb2.MetricsSpec(
                metrics=[
                    config_pb2.MetricConfig(class_name="ExampleCount"),
                    config_pb2.MetricConfig(
                        class_name="BinaryAccuracy",
                        # Judged on the overall slice: a small slice (a star rating, long reviews) is reported,
                        # not gated, or a handful of examples could veto a better model.
                        per_slice_thresholds=[
                            config_pb2.PerSliceMetricThreshold(
                                slicing_specs=[config_pb2.SlicingSpec()], threshold=accuracy_gate
                            )
                        ],
                    ),
                    config_pb2.MetricConfig(class_name="AUC"),
                    config_pb2.MetricConfig(class_name="Precision"),
                    config_pb2.MetricConfig(class_name="Recall"),
                    config_pb2.MetricConfig(class_name="Calibration"),
                    config_pb2.MetricConfig(class_name="MeanLabel"),
                    config_pb2.MetricConfig(class_name="MeanPrediction"),
                    config_pb2.MetricConfig(class_name="CalibrationPlot"),
                    config_pb2.MetricConfig(
                        class_name="ConfusionMatrixAtThresholds", config=json.dumps({"thresholds": [0.5]})
                    ),
                ]
            )
        ],
    )


def _infra_validator(config: PipelineConfig, model: Any, examples: Any) -> Any:
    if config.infra_validator == "docker":  # TFX's own, with TF Serving in Docker, unchanged
        return tfx.components.InfraValidator(
            model=model,
            examples=examples,
            serving_spec=tfx.proto.ServingSpec(
                tensorflow_serving=tfx.proto.TensorFlowServing(tags=["latest"]),
                local_docker=tfx.proto.LocalDockerConfig(),
                model_name=config.model_name,
            ),
            validation_spec=tfx.proto.ValidationSpec(max_loading_time_seconds=int(config.infra_load_deadline_s)),
            request_spec=tfx.proto.RequestSpec(
                tensorflow_serving=tfx.proto.TensorFlowServingRequestSpec(
                    signature_names=[features.EXAMPLES_SIGNATURE]
                ),
                num_examples=config.infra_num_requests,
                make_warmup=config.infra_make_warmup,
            ),
        )
    return ModelServerInfraValidator(
        model=model,
        examples=examples,
        model_name=config.model_name,
        load_deadline_s=config.infra_load_deadline_s,
        num_requests=config.infra_num_requests,
        make_warmup=config.infra_make_warmup,
    ).with_id("InfraValidator")


def create_pipeline(
    config: PipelineConfig,
    *,
    imdb_source: str,
    encoder: ResolvedEncoder,
    metadata_connection_config: Any | None = None,
    source_fingerprint: str | None = None,
) -> tfx.dsl.Pipeline:
    """IMDB reviews in, a fine-tuned BERT sentiment SavedModel pushed to `serving_model/<model_name>/<version>`.

    `source_fingerprint` defaults to one read from the local data; a runner whose data lives where this process
    cannot look (a bucket, a path inside a container) passes its own.
    """
    example_gen = ImdbExampleGen(
        source=imdb_source,
        max_per_split=config.max_examples_per_split,
        seed=config.data_seed,
        source_fingerprint=(  # a replaced archive invalidates the cache
            source_fingerprint if source_fingerprint is not None else imdb_data.source_fingerprint(imdb_source)
        ),
    )
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_file = config.resolved_uri(config.schema_file) if config.schema_file else SCHEMA_FILE
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
        preprocessing_fn=PREPROCESSING_FN,
        custom_config=TransformSettings.from_config(config, encoder).to_custom_config(),
    )
    transform.add_upstream_node(anomalies_gate)
    trainer_settings = TrainerSettings.from_config(config, encoder).to_custom_config()
    tuning: list[Any] = []
    hyperparameters = None
    if config.enable_tuner:
        tuner = tfx.components.Tuner(
            **_trainer_module(config, "tuner_fn", TUNER_FN),
            examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"],
            schema=schema_gen.outputs["schema"],
            train_args=tfx.proto.TrainArgs(splits=["train"], num_steps=config.tuner_train_steps),
            eval_args=tfx.proto.EvalArgs(splits=["eval"], num_steps=config.tuner_eval_steps),
            custom_config=trainer_settings,
        )
        tuning, hyperparameters = [tuner], tuner.outputs["best_hyperparameters"]
    elif config.hyperparameters_uri:
        imported = tfx.dsl.Importer(
            source_uri=config.resolved_uri(config.hyperparameters_uri),
            artifact_type=tfx.types.standard_artifacts.HyperParameters,
        ).with_id("HyperparametersImporter")
        tuning, hyperparameters = [imported], imported.outputs["result"]
    trainer = tfx.components.Trainer(
        **_trainer_module(config, "run_fn", RUN_FN),
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        hyperparameters=hyperparameters,
        train_args=tfx.proto.TrainArgs(splits=["train"], num_steps=config.train_steps),
        eval_args=tfx.proto.EvalArgs(splits=["eval"], num_steps=config.eval_steps),
        custom_config=trainer_settings,
    )
    baseline_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("LatestBlessedModelResolver")
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline_resolver.outputs["model"],
        eval_config=eval_config(config),
    )
    validation: list[Any] = []
    push_inputs: dict[str, Any] = {"model": trainer.outputs["model"]}
    if config.infra_validator != "off":
        infra_validator = _infra_validator(config, trainer.outputs["model"], example_gen.outputs["examples"])
        validation = [infra_validator]
        push_inputs = {"infra_blessing": infra_validator.outputs["blessing"]}
        if not config.infra_make_warmup:  # otherwise Pusher pushes the validated copy with warm-up requests
            push_inputs["model"] = trainer.outputs["model"]
    pusher = tfx.components.Pusher(
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.push_destination_uri)
        ),
        custom_executor_spec=executor_spec.ExecutorClassSpec(AtomicPusherExecutor),
        **push_inputs,
    )
    bulk_inference = bulk_inference_components(  # [] unless config.bulk_inference
        config, example_gen.outputs["examples"], trainer.outputs["model"], evaluator.outputs["blessing"]
    )
    components = [
        example_gen,
        statistics_gen,
        schema_gen,
        example_validator,
        anomalies_gate,
        transform,
        *tuning,
        trainer,
        baseline_resolver,
        evaluator,
        *validation,
        pusher,
        *bulk_inference,
    ]
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root_uri,
        components=components,
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.beam_pipeline_args),
    )
