"""ExampleValidator's anomalies stop the pipeline before Transform and Trainer, naming what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2

from pipeline_modules.components.anomalies_gate import DataAnomaliesError, check_anomalies
from pipeline_modules.config import config_for
from pipeline_modules.local_runner import prepare_data_source, run
from pipeline_modules.pipeline import SCHEMA_FILE


def _anomalies(feature: str, short: str, description: str) -> anomalies_pb2.Anomalies:
    anomalies = anomalies_pb2.Anomalies()
    info = anomalies.anomaly_info[feature]
    info.short_description = short
    reason = info.reason.add()
    reason.description = description
    return anomalies


def test_no_anomalies_pass() -> None:
    assert (
        check_anomalies({"train": anomalies_pb2.Anomalies(), "eval": anomalies_pb2.Anomalies()}, allow_anomalies=False)
        == 0
    )


def test_anomalies_stop_with_their_names() -> None:
    found = {
        "train": _anomalies("label", "Out-of-range values", "Unexpectedly large value: 2."),
        "eval": anomalies_pb2.Anomalies(),
    }
    with pytest.raises(DataAnomaliesError) as error:
        check_anomalies(found, allow_anomalies=False)
    message = str(error.value)
    assert "[train] feature 'label': Out-of-range values (Unexpectedly large value: 2.)" in message
    assert "--allow-anomalies" in message


def test_switch_lets_the_run_continue() -> None:
    found = {"eval": _anomalies("review", "Column dropped", "The feature was present in fewer examples.")}
    assert check_anomalies(found, allow_anomalies=True) == 1


@pytest.mark.slow
def test_pipeline_stops_before_transform_on_anomalies(tmp_path: Path, smoke_encoder) -> None:
    strict = (
        Path(SCHEMA_FILE)
        .read_text()
        .replace('    name: "word_count"\n    min: 1\n', '    name: "word_count"\n    min: 1\n    max: 3\n')
    )
    assert "max: 3" in strict
    (tmp_path / "strict.pbtxt").write_text(strict)
    config = config_for(
        "smoke",
        pipeline_root=str(tmp_path / "root"),
        serving_model_dir=str(tmp_path / "serving"),
        schema_file=str(tmp_path / "strict.pbtxt"),
    )
    with pytest.raises(Exception, match=r"feature 'word_count'") as error:
        run(config, source=prepare_data_source(config, None), encoder=smoke_encoder)
    assert "stopping before Transform and Trainer" in str(error.value)
    assert not (tmp_path / "root" / "Transform").exists()
    assert not (tmp_path / "root" / "Trainer").exists()
    assert not (tmp_path / "serving").exists()
