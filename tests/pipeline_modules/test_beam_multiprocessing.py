"""The data components under Beam's DirectRunner in multi-processing mode, as a cluster runner would split them."""

from __future__ import annotations

from pathlib import Path

import pytest
import tensorflow as tf

from pipeline_modules.config import config_for
from pipeline_modules.local_runner import prepare_data_source, run
from pipeline_modules.run_summary import latest_run

pytestmark = pytest.mark.slow


def test_smoke_data_components_with_two_beam_worker_processes(tmp_path: Path, smoke_encoder, capsys) -> None:
    config = config_for(
        "smoke",
        pipeline_root=str(tmp_path / "root"),
        serving_model_dir=str(tmp_path / "serving"),
        beam_pipeline_args=("--direct_running_mode=multi_processing", "--direct_num_workers=2"),
    )
    assert run(config, source=prepare_data_source(config, None), encoder=smoke_encoder, to_component="Transform") == 0
    printed = capsys.readouterr().out
    assert "[6/6] Transform finished" in printed  # a partial run counts only the components it runs

    summary = latest_run(config.metadata_path_resolved, config.pipeline_name)
    states = {c.component_id: c.state for c in summary.components}
    assert states == dict.fromkeys(
        ["ImdbExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator", "AnomaliesGate", "Transform"],
        "COMPLETE",
    )
    (transformed,) = [a for a in summary.artifacts["Examples"] if "/Transform/" in a.uri]
    for split in ("train", "eval"):
        files = tf.io.gfile.glob(f"{transformed.uri}/Split-{split}/*")
        count = sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP"))
        assert count == 2 * config.synthetic_reviews_per_class
    assert not (tmp_path / "root" / "Trainer").exists()
