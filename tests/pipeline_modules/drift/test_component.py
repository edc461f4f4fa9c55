"""DriftReport as TFX runs it: artifacts in, an ExampleAnomalies artifact and two integers out."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import artifact_utils, standard_artifacts

from pipeline_modules.drift.cli import CURATED_SCHEMA
from pipeline_modules.drift.component import DriftDetectedError, DriftReport, log_files
from tests.pipeline_modules.drift.drift_helpers import (
    imdb_like_texts,
    short_texts,
    write_log,
    write_training_statistics,
)


def _run(tmp_path: Path, log: str, **params: object) -> tuple[standard_artifacts.ExampleAnomalies, int, int]:
    statistics = standard_artifacts.ExampleStatistics()
    statistics.uri = str(tmp_path / "statistics")
    statistics.split_names = artifact_utils.encode_split_names(["train"])
    schema = standard_artifacts.Schema()
    schema.uri = str(Path(CURATED_SCHEMA).parent)
    report = standard_artifacts.ExampleAnomalies()
    report.uri = str(tmp_path / "report")
    drift, records = standard_artifacts.Integer(), standard_artifacts.Integer()
    drift.uri, records.uri = str(tmp_path / "drift"), str(tmp_path / "records")
    executor = DriftReport.EXECUTOR_SPEC.executor_class()
    executor.Do(
        {"statistics": [statistics], "schema": [schema]},
        {"drift_report": [report], "drift_detected": [drift], "records": [records]},
        {"request_log_path": log, "since": "last 1h", **params},
    )
    return report, drift.read(), records.read()


def test_component_reports_drift_as_an_output(tmp_path: Path) -> None:
    write_training_statistics(tmp_path / "statistics", imdb_like_texts(400, seed=9))
    (tmp_path / "logs").mkdir()
    write_log(tmp_path / "logs" / "requests.jsonl", short_texts(150))
    report, drift, records = _run(tmp_path, str(tmp_path / "logs"))
    assert (drift, records) == (1, 150)
    assert artifact_utils.decode_split_names(report.split_names) == ["serving"]
    anomalies = anomalies_pb2.Anomalies.FromString(
        (tmp_path / "report" / "Split-serving" / "SchemaDiff.pb").read_bytes()
    )
    assert "word_count" in anomalies.anomaly_info
    assert {"summary.json", "summary.md", "drift.png", "anomalies.pbtxt"} <= {
        p.name for p in (tmp_path / "report").iterdir()
    }
    with pytest.raises(DriftDetectedError, match="word_count"):
        _run(tmp_path, str(tmp_path / "logs" / "requests.jsonl*"), fail_on_drift=True)


def test_log_locations(tmp_path: Path) -> None:
    for name in ("requests.jsonl", "requests.jsonl.1.gz", "notes.txt"):
        (tmp_path / name).write_text("")
    assert log_files(str(tmp_path)) == [str(tmp_path / "requests.jsonl"), str(tmp_path / "requests.jsonl.1.gz")]
    assert log_files(str(tmp_path / "requests.jsonl*")) == [
        str(tmp_path / n) for n in ("requests.jsonl", "requests.jsonl.1.gz")
    ]
    assert log_files(str(tmp_path / "missing.jsonl")) == [str(tmp_path / "missing.jsonl")]  # the reader names it
