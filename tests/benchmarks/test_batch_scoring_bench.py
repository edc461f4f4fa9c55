"""benchmarks/batch_scoring.py runs end to end on a small generated archive with the toy model, in every mode."""

from __future__ import annotations

import json
import math
from pathlib import Path

from benchmarks import batch_scoring


def test_batch_scoring_benchmark_writes_its_figures(tmp_path: Path) -> None:
    from pipeline_modules.data import write_synthetic_archive
    from tests.doubles.toy_model import build_toy_model

    archive = tmp_path / "aclImdb_v1.tar.gz"
    write_synthetic_archive(archive, n_per_class=12, seed=3)
    model = build_toy_model(str(tmp_path / "models" / "toy" / "5"))
    output = tmp_path / "batch.json"
    argv = [f"--imdb-archive={archive}", f"--model={Path(model).parent}", "--limit=16", "--rounds=1"]
    assert batch_scoring.main([*argv, "--batch-size=4", f"--output={output}"]) == 0
    result = json.loads(output.read_text())
    assert result["reviews"] == 16
    for mode in batch_scoring.MODES:
        assert math.isfinite(result[f"{mode}_rows_per_s"]) and result[f"{mode}_rows_per_s"] > 0
        (run,) = result["runs"][mode]
        assert run["rows"] == 16 and run["scored"] + run["rejected"] == 16
        assert run["load_avg_1m_before"] >= 0
    accuracies = {result["runs"][mode][0]["accuracy"] for mode in batch_scoring.MODES}
    assert len(accuracies) == 1  # every mode scored the same reviews the same way
    assert result["server_exit_code"] == 0
