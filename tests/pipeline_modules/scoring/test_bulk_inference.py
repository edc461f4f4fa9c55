"""BulkInferrer in the pipeline: off by default; when on, wired after Evaluator's blessing through `from_examples`;
and its executor, run on the toy model, adds the model's own answers to every example."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline_modules import pipeline as pipeline_definition
from pipeline_modules.config import PipelineConfig, config_for
from pipeline_modules.scoring import bulk_inference
from tests.pipeline_modules.test_pipeline_definition import ENCODER


def _components(config: PipelineConfig) -> dict[str, Any]:
    built = pipeline_definition.create_pipeline(
        config, imdb_source="tfds", encoder=ENCODER, source_fingerprint="path:tfds"
    )
    return {component.id: component for component in built.components}


def _config(tmp_path: Path, **overrides: Any) -> PipelineConfig:
    return config_for("smoke", pipeline_root=str(tmp_path / "root"), serving_model_dir=str(tmp_path / "s"), **overrides)


def _producer(channel: Any) -> str:
    return str(channel.producer_component_id)


def _proto(value: Any, message_type: Any) -> Any:
    """An exec property as its proto: TFX keeps protos as JSON strings in the component, or as messages."""
    from tfx.utils import proto_utils

    return proto_utils.json_to_proto(value, message_type()) if isinstance(value, str) else value


def test_off_by_default(tmp_path: Path) -> None:
    assert PipelineConfig().bulk_inference is False
    components = _components(_config(tmp_path))
    assert bulk_inference.BULK_INFERRER_ID not in components
    assert bulk_inference.IMPORTER_ID not in components


def test_on_it_scores_the_eval_split_with_the_blessed_model_through_from_examples(tmp_path: Path) -> None:
    from tfx.proto import bulk_inferrer_pb2

    components = _components(_config(tmp_path, bulk_inference=True))
    inferrer = components[bulk_inference.BULK_INFERRER_ID]
    assert _producer(inferrer.inputs["examples"]) == "ImdbExampleGen"
    assert _producer(inferrer.inputs["model"]) == "Trainer"
    assert _producer(inferrer.inputs["model_blessing"]) == "Evaluator"
    properties = inferrer.exec_properties
    assert list(_proto(properties["data_spec"], bulk_inferrer_pb2.DataSpec).example_splits) == ["eval"]
    model_spec = _proto(properties["model_spec"], bulk_inferrer_pb2.ModelSpec)
    assert list(model_spec.model_signature_name) == ["from_examples"]
    (spec,) = _proto(properties["output_example_spec"], bulk_inferrer_pb2.OutputExampleSpec).output_columns_spec
    assert [(c.output_key, c.output_column) for c in spec.predict_output.output_columns] == [
        ("probability", "probability"), ("label", "predicted_label"),
    ]  # fmt: skip
    assert set(inferrer.outputs) == {"output_examples"}


def test_a_given_dataset_comes_in_through_an_importer(tmp_path: Path) -> None:
    components = _components(
        _config(tmp_path, bulk_inference=True, bulk_inference_examples_uri="/data/new", bulk_inference_split="new")
    )
    importer = components[bulk_inference.IMPORTER_ID]
    assert importer.exec_properties["artifact_uri"] == "/data/new"
    inferrer = components[bulk_inference.BULK_INFERRER_ID]
    assert _producer(inferrer.inputs["examples"]) == bulk_inference.IMPORTER_ID
    from tfx.proto import bulk_inferrer_pb2

    data_spec = _proto(inferrer.exec_properties["data_spec"], bulk_inferrer_pb2.DataSpec)
    assert list(data_spec.example_splits) == ["new"]


def test_an_empty_split_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bulk_inference_split"):
        _config(tmp_path, bulk_inference=True, bulk_inference_split="")


TEXTS = ["A wonderful, brilliant film", "boring and awful", "a film"]


def _write_examples(split_dir: Path) -> None:
    import tensorflow as tf

    split_dir.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(split_dir / "data.tfrecord.gz"), options="GZIP") as writer:
        for i, text in enumerate(TEXTS):
            example = tf.train.Example()
            example.features.feature["review"].bytes_list.value.append(text.encode())
            example.features.feature["label"].int64_list.value.append(i % 2)
            writer.write(example.SerializeToString())


def test_the_executor_adds_the_models_answers_to_each_example(
    tmp_path: Path, toy_model_dir: str, direct_scores: Any
) -> None:
    import shutil

    import tensorflow as tf
    from tfx.types import artifact_utils, standard_artifacts
    from tfx.utils import proto_utils

    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    examples.split_names = artifact_utils.encode_split_names(["eval"])
    _write_examples(tmp_path / "examples" / "Split-eval")
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "model")
    shutil.copytree(Path(toy_model_dir) / "1", tmp_path / "model" / "Format-Serving")
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    blessing.set_int_custom_property("blessed", 1)
    output = standard_artifacts.Examples()
    output.uri = str(tmp_path / "output")

    from tfx import v1 as tfx

    channels = [tfx.dsl.Channel(type=type(a)) for a in (examples, model, blessing)]
    (inferrer,) = bulk_inference.bulk_inference_components(_config(tmp_path, bulk_inference=True), *channels)
    properties = {
        k: v if isinstance(v, str) else proto_utils.proto_to_json(v)
        for k, v in inferrer.exec_properties.items()
        if v is not None
    }
    assert inferrer.executor_spec.executor_class is bulk_inference.Executor
    context = bulk_inference.Executor.Context(
        beam_pipeline_args=["--direct_running_mode=in_memory"], tmp_dir=str(tmp_path / "t"), unique_id="1"
    )
    bulk_inference.Executor(context).Do(
        {"examples": [examples], "model": [model], "model_blessing": [blessing]}, {"output_examples": [output]},
        properties,
    )  # fmt: skip

    records = tf.data.TFRecordDataset(
        [str(p) for p in (tmp_path / "output" / "Split-eval").iterdir()], compression_type="GZIP"
    )
    scored = {}
    for record in records.as_numpy_iterator():
        feature = tf.train.Example.FromString(record).features.feature
        scored[feature["review"].bytes_list.value[0].decode()] = (
            feature["label"].int64_list.value[0],  # the true label is kept
            feature["probability"].float_list.value[0],
            feature["predicted_label"].bytes_list.value[0].decode(),
        )
    probabilities, labels = direct_scores(TEXTS)
    assert sorted(scored) == sorted(TEXTS)
    assert [scored[t][0] for t in TEXTS] == [0, 1, 0]
    np.testing.assert_allclose([scored[t][1] for t in TEXTS], probabilities, rtol=1e-6)
    assert [scored[t][2] for t in TEXTS] == labels
    assert json.loads(output.split_names) == ["eval"]
