"""Every benchmark script runs end to end on the `smoke` preset and writes the figures its README table reads.

One smoke pipeline (train benchmark) pushes a model; the serving benchmark then serves that very model. Figures are
checked for shape and sanity only (positive, finite, consistent), never against a wall time.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks import accuracy_levers, serve_bench, speed_levers, train_bench

pytestmark = pytest.mark.slow  # a smoke pipeline and a few short trainings


def _positive(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def train_result(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    work = tmp_path_factory.mktemp("train-bench")
    output = work / "train-smoke.json"
    argv = [
        "--preset=smoke",
        f"--pipeline-root={work / 'pipeline'}",
        f"--serving-model-dir={work / 'serving'}",
        "--peak-seconds=0.5",
        f"--output={output}",
    ]
    assert train_bench.main(argv) == 0
    return json.loads(output.read_text()), work


def test_train_benchmark_reports_accuracy_throughput_and_mfu(train_result) -> None:
    result, _ = train_result
    assert result["preset"] == "smoke"
    assert 0.0 <= result["test_accuracy"] <= 1.0
    assert result["test_examples"] == 96  # the whole generated eval split
    for key in ("train_examples_per_s", "wall_s", "mfu", "achieved_gflops", "model_gflops_per_review"):
        assert _positive(result[key]), key
    assert result["mfu"] < 1.0  # a fraction of a peak measured on the same machine
    assert result["mfu"] == pytest.approx(result["achieved_gflops"] / result["matmul_peak"]["peak_gflops"], rel=0.02)
    assert result["training_dtype"] == "float32" and result["mfu_training_dtype"] == result["mfu"]  # smoke: float32
    assert result["encoder"]["layers"] == 2 and result["encoder"]["hidden"] == 384
    assert 0 < result["mean_real_tokens_per_review"] <= 32
    for component in ("ImdbExampleGen", "Transform", "Trainer", "Evaluator", "Pusher"):
        assert component in result["components_s"]
    assert result["pushed_destination"]
    assert result["served"]["engine"] == "onnxruntime fp32"  # smoke's default engine, exact: the Evaluator's accuracy
    assert result["served"]["accuracy"] == result["test_accuracy"]
    assert "Overall" in result["eval_slices"]
    assert {"machine", "date", "config"} <= result.keys()


def test_serve_benchmark_serves_the_pushed_smoke_model(train_result, tmp_path: Path) -> None:
    _, work = train_result
    output = tmp_path / "serve-smoke.json"
    argv = [
        f"--model_base_path={work / 'serving' / 'bert_imdb'}",
        "--model_name=bert_imdb",
        "--duration=0.5",
        "--concurrency",
        "1",
        "4",
        "--warmup_requests=1",
        "--no_batching_off",
        f"--output={output}",
    ]
    assert serve_bench.main(argv) == 0
    result = json.loads(output.read_text())
    for key in ("in_process_examples_per_s", "server_examples_per_s_c32", "p50_ms_short_c1", "p99_ms_long_c32"):
        assert _positive(result[key]), key
    rest = result["server"]["batching_on"]["rest"]
    assert rest["long"]["c4"]["errors"] == 0 and rest["short"]["c1"]["errors"] == 0


def test_accuracy_levers_on_smoke(tmp_path: Path) -> None:
    output = tmp_path / "levers.json"
    argv = [
        "--preset=smoke",
        "--levers",
        "baseline",
        "head_only",
        "constant_lr",
        "--train-examples=32",
        "--test-examples=32",
        "--learning-rate=3e-4",
        f"--pipeline-root={tmp_path / 'root'}",
        f"--output={output}",
    ]
    assert accuracy_levers.main(argv) == 0
    result = json.loads(output.read_text())
    by_lever = {r["lever"]: r for r in result["results"]}
    assert set(by_lever) == {"baseline", "head_only", "constant_lr"}
    assert by_lever["baseline"]["accuracy_vs_baseline"] == 0.0
    assert by_lever["head_only"]["head_fraction"] == 1.0
    assert by_lever["constant_lr"]["learning_rate_schedule"] == "constant"
    for r in result["results"]:
        assert r["test_examples"] == 32
        assert 0.0 <= r["test_accuracy"] <= 1.0 and 0.0 <= r["test_auc"] <= 1.0
        assert _positive(r["train_examples_per_s"])


def test_speed_levers_on_smoke(tmp_path: Path) -> None:
    output = tmp_path / "speed.json"
    argv = [
        "--preset=smoke",
        "--reviews=32",
        "--steps=2",
        "--warmup-steps=1",
        "--serve-repeats=2",
        "--train-levers",
        "baseline",
        "bucketing",
        "--serve-levers",
        "pad_to_max",
        "length_buckets",
        f"--pipeline-root={tmp_path / 'root'}",
        f"--output={output}",
    ]
    assert speed_levers.main(argv) == 0
    result = json.loads(output.read_text())
    assert set(result["train"]) == {"baseline", "bucketing"}
    assert result["train"]["baseline"]["speedup_vs_baseline"] == 1.0
    assert _positive(result["train"]["bucketing"]["train_examples_per_s"])
    assert _positive(result["input_pipeline"]["parse_examples_per_s"])
    for lever in ("pad_to_max", "length_buckets"):
        assert _positive(result["serve"][lever]["short_batch1_p50_ms"])


def test_auc_by_ranks() -> None:
    assert accuracy_levers.auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert accuracy_levers.auc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]) == 0.0
    assert accuracy_levers.auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
