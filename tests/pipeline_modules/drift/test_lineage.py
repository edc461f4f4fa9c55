"""The baseline of a served version is found through ML Metadata: the StatisticsGen output of its training data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as _pb2

from pipeline_modules.drift.cli import main
from pipeline_modules.drift.lineage import LineageError, training_inputs
from tests.pipeline_modules.drift.drift_helpers import imdb_like_texts, write_log, write_training_statistics

pb2: Any = _pb2


class _Recorder:
    """Writes a pipeline's lineage the way TFX records it: artifacts, executions and keyed input/output events."""

    def __init__(self, path: Path) -> None:
        config = pb2.ConnectionConfig()
        config.sqlite.filename_uri = str(path)
        config.sqlite.connection_mode = pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        self.store = metadata_store.MetadataStore(config)
        self.types: dict[str, int] = {}

    def _type(self, name: str, kind: str) -> int:
        if name not in self.types:
            t = pb2.ArtifactType(name=name) if kind == "artifact" else pb2.ExecutionType(name=name)
            put = self.store.put_artifact_type if kind == "artifact" else self.store.put_execution_type
            self.types[name] = put(t)
        return self.types[name]

    def artifact(self, type_name: str, uri: str, **custom: str | int) -> int:
        a = pb2.Artifact(type_id=self._type(type_name, "artifact"), uri=uri)
        for k, v in custom.items():
            if isinstance(v, int):
                a.custom_properties[k].int_value = v
            else:
                a.custom_properties[k].string_value = v
        return int(self.store.put_artifacts([a])[0])

    def execution(self, component: str, inputs: dict[str, int], outputs: dict[str, int]) -> None:
        [execution_id] = self.store.put_executions([pb2.Execution(type_id=self._type(component, "execution"))])
        events = []
        for kind, keyed in ((pb2.Event.INPUT, inputs), (pb2.Event.OUTPUT, outputs)):
            for key, artifact_id in keyed.items():
                event = pb2.Event(artifact_id=artifact_id, execution_id=execution_id, type=kind)
                event.path.steps.add().key = key
                events.append(event)
        self.store.put_events(events)


def _pipeline_run(rec: _Recorder, root: Path, run: int, version: int) -> tuple[int, int]:
    examples = rec.artifact("Examples", f"{root}/ImdbExampleGen/examples/{run}")
    rec.execution("ImdbExampleGen", {}, {"examples": examples})
    schema = rec.artifact("Schema", f"{root}/ImportSchemaGen/schema/{run}")
    rec.execution("ImportSchemaGen", {}, {"schema": schema})
    stats = rec.artifact("ExampleStatistics", f"{root}/StatisticsGen/statistics/{run}")
    rec.execution("StatisticsGen", {"examples": examples}, {"statistics": stats})
    transformed = rec.artifact("Examples", f"{root}/Transform/transformed_examples/{run}")
    pre = rec.artifact("ExampleStatistics", f"{root}/Transform/pre_transform_stats/{run}")
    post_schema = rec.artifact("Schema", f"{root}/Transform/post_transform_schema/{run}")
    rec.execution(
        "Transform",
        {"examples": examples, "schema": schema},
        {"transformed_examples": transformed, "pre_transform_stats": pre, "post_transform_schema": post_schema},
    )
    model = rec.artifact("Model", f"{root}/Trainer/model/{run}")
    rec.execution("Trainer", {"examples": transformed, "schema": schema}, {"model": model})
    pushed = rec.artifact(
        "PushedModel",
        f"{root}/Pusher/pushed_model/{run}",
        pushed=1,
        pushed_version=str(version),
        pushed_destination=f"/serving/bert_imdb/{version}",
    )
    rec.execution("Pusher", {"model": model}, {"pushed_model": pushed})
    return stats, schema


def test_statistics_and_schema_of_the_run_that_pushed_the_version(tmp_path: Path) -> None:
    rec = _Recorder(tmp_path / "metadata.sqlite")
    _pipeline_run(rec, tmp_path, 1, 100)
    _pipeline_run(rec, tmp_path, 2, 200)  # a later run: its statistics are not version 100's
    found = training_inputs(tmp_path / "metadata.sqlite", 100, "bert_imdb")
    assert found.statistics_uri == f"{tmp_path}/StatisticsGen/statistics/1"  # not Transform's pre_transform_stats
    assert found.schema_uri == f"{tmp_path}/ImportSchemaGen/schema/1"  # not Transform's post-transform schema
    assert found.pushed_destination == "/serving/bert_imdb/100"
    assert training_inputs(tmp_path / "metadata.sqlite", 200).statistics_uri.endswith("/statistics/2")
    with pytest.raises(LineageError, match="unknown model version 300: .*: 100, 200"):
        training_inputs(tmp_path / "metadata.sqlite", 300)
    with pytest.raises(LineageError, match="no ML Metadata at"):
        training_inputs(tmp_path / "nothing.sqlite", 100)


def test_command_finds_the_baseline_through_ml_metadata(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "pipeline"
    rec = _Recorder(tmp_path / "metadata.sqlite")
    _pipeline_run(rec, root, 1, 100)
    write_training_statistics(root / "StatisticsGen/statistics/1", imdb_like_texts(300, seed=2))
    # The run's schema folder is absent here: the report falls back to the curated schema only when MLMD has none,
    # so a missing one is an error that names it.
    write_log(tmp_path / "requests.jsonl", imdb_like_texts(100, seed=8), version=100)
    argv = ["--request-log", str(tmp_path / "requests.jsonl"), "--metadata-path", str(tmp_path / "metadata.sqlite")]
    assert main([*argv, "--output-dir", str(tmp_path / "report")]) == 2
    assert "schema not found" in capsys.readouterr().err
    (root / "ImportSchemaGen/schema/1").mkdir(parents=True)
    curated = Path(__file__).resolve().parents[3] / "pipeline_modules" / "schema" / "schema.pbtxt"
    (root / "ImportSchemaGen/schema/1/schema.pbtxt").write_text(curated.read_text())
    assert main([*argv, "--output-dir", str(tmp_path / "report")]) == 0
    assert "statistics/1` (split train)" in (tmp_path / "report" / "summary.md").read_text()
    write_log(tmp_path / "requests.jsonl", ["another version"], version=999)
    assert main([*argv, "--output-dir", str(tmp_path / "report")]) == 2  # the newest logged version is unknown
    assert "unknown model version 999" in capsys.readouterr().err
