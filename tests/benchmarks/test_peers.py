"""The peers benchmark runs end to end on the `smoke` preset (2 layers, 32 tokens, tiny batches, one round) and writes
the keys the issue's checks read, each positive and finite where measured; never a wall time or a speed ratio.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from benchmarks import peers

pytestmark = pytest.mark.slow  # exports a model, starts a server

MEASURED_KEYS = (
    "ours_p50_ms_short_b1",
    "ort_fp32_p50_ms_short_b1",
    "ours_examples_per_s_short_b32",
    "ort_fp32_examples_per_s_short_b32",
    "ours_examples_per_s_long_b32",
    "ort_fp32_examples_per_s_long_b32",
    "baseline_tf_examples_per_s_long_b32",
    "rest_p50_ms_short_c1",
    "grpc_p50_ms_short_c1",
)


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("peers")
    train = work / "train-speed.json"
    train.write_text(json.dumps({"train_examples_per_s_baseline": 7.0, "train_examples_per_s": 9.5, "date": "d"}))
    output = work / "peers-smoke.json"
    argv = [
        "--preset=smoke",
        "--rounds=2",
        "--repeats=1",
        "--short-batch=3",
        "--long-batch=2",
        "--peak-seconds=0.2",
        "--wrk-seconds=1",
        "--wrk-c1-seconds=1",
        "--train-rounds=0",
        f"--train-result={train}",
        f"--output={output}",
    ]
    assert peers.main(argv) == 0
    loaded: dict[str, Any] = json.loads(output.read_text())
    return loaded


def test_every_issue_key_is_there_and_sane(result: dict[str, Any]) -> None:
    for key in MEASURED_KEYS:
        assert _positive(result[key]), key
    int8 = result["ort_int8_examples_per_s_long_b32"]
    assert _positive(int8) or "ort_int8" in result["not_measured"]  # ONNX Runtime 1.26 needs sympy to quantize
    assert "pytorch" in result["not_measured"]
    for key in ("ours_one_call_examples_per_s_short_b32", "ours_one_call_examples_per_s_long_b32"):
        assert _positive(result[key]), key  # the same model without call planning, in the same rounds
    assert (result["train_examples_per_s_baseline"], result["train_examples_per_s"]) == (7.0, 9.5)
    assert result["batch_sizes"] == {"short_b1": 1, "short_b32": 3, "long_b32": 2}
    assert {"machine", "date", "matmul_peak"} <= result.keys()


def test_rounds_record_the_load_and_every_engine_each_round(result: dict[str, Any]) -> None:
    assert [r["round"] for r in result["load"]] == [0, 1]
    assert all(r["other_cores"] >= 0 and r["loadavg_1m"] >= 0 for r in result["load"])
    for workload in ("short_b1", "short_b32", "long_b32"):
        for engine in ("ours", "baseline_tf", "ort_fp32"):
            assert len(result["results"][workload][engine]["round_medians_ms"]) == 2
    assert set(result["results"]["short_b1"]) >= {"rest", "grpc"}


def test_engines_score_the_same_short_sentences_alike(result: dict[str, Any]) -> None:
    short = result["max_abs_probability_difference_vs_ours"]["short_b32"]
    assert short["ours"] == 0.0
    assert short["baseline_tf"] < 1e-5  # the same SavedModel
    assert short["ort_fp32"] < 1e-3  # same weights; Hugging Face's WordPiece instead of TF Text's


def test_rest_c1_names_its_client(result: dict[str, Any]) -> None:
    python_client = result["rest_p50_ms_short_c1_python_client"]
    assert _positive(python_client)
    if shutil.which("wrk"):
        assert result["rest_c1_client"] == "wrk, one connection"
        assert result["rest_p50_ms_short_c1"] == result["results"]["short_b1"]["rest_wrk"]["p50_ms"]
        assert len(result["results"]["short_b1"]["rest_wrk"]["round_medians_ms"]) == result["rounds"]
    else:
        assert result["rest_c1_client"] == "Python (RestClient)"
        assert result["rest_p50_ms_short_c1"] == python_client


def test_wrk_is_measured_or_its_absence_said(result: dict[str, Any]) -> None:
    wrk = result["wrk_c32"]
    if shutil.which("wrk"):
        assert wrk["measured"] and _positive(result["rest_examples_per_s_short_c32"]) and wrk["non_2xx"] == 0
    else:
        assert not wrk["measured"] and "wrk is not installed" in wrk["reason"]


def test_missing_training_figures_are_null_with_the_reason(tmp_path: Path) -> None:
    figures = peers.training_figures(tmp_path / "absent.json")
    assert figures["train_examples_per_s"] is None and figures["train_examples_per_s_baseline"] is None
    assert "train_bench --speed" in figures["train_note"]


def test_ours_int8_is_our_server_on_the_trainers_int8_graph(result: dict[str, Any]) -> None:
    if "ours_int8" in result["not_measured"]:  # ONNX Runtime 1.26 needs sympy to quantize
        assert "quantiz" in result["not_measured"]["ours_int8"]
        return
    assert result["ours_int8_engine"].startswith("onnxruntime int8")
    assert result["ours_engine"].startswith("onnxruntime fp32")
    for key in ("ours_int8_p50_ms_short_b1", "ours_int8_examples_per_s_short_b32", "ours_int8_examples_per_s_long_b32"):
        assert _positive(result[key]), key
    short = result["max_abs_probability_difference_vs_ours"]["short_b32"]
    assert 0 < short["ours_int8"] < 0.5  # quantized, so not bit-for-bit, but the same model
    ratios = result["throughput_vs_baseline_tf"]["long_b32"]
    assert ratios["baseline_tf"] == 1.0 and _positive(ratios["ours_int8"])


def test_training_is_measured_in_the_same_run(tmp_path: Path) -> None:
    args = argparse.Namespace(
        preset="smoke",
        train_variants=["hub_fp32", "in_process_bf16"],
        train_rounds=2,
        train_steps=1,
        train_batch=2,
        train_seq_length=16,
        peak_seconds=0.2,
    )
    figures = peers.train_in_this_run(args, tmp_path)
    assert _positive(figures["train_examples_per_s_baseline"]) and _positive(figures["train_examples_per_s"])
    assert figures["train_source"].startswith("this run (in_process_bf16 vs hub_fp32, batch 2 x 16, 2 rounds")
    variants = figures["training"]["variants"]
    assert set(variants) == {"hub_fp32", "in_process_bf16"}
    assert variants["in_process_bf16"]["speedup_vs_baseline"] == pytest.approx(
        figures["train_examples_per_s"] / figures["train_examples_per_s_baseline"], rel=0.01
    )
    assert [r["round"] for r in figures["training"]["rounds"]] == [0, 1]
    for v in variants.values():  # the fastest of the 2 timed steps, beside their median
        assert 0 < v["best_step_s"] <= v["median_step_s"] and _positive(v["examples_per_s_best_step"])
    best = variants["hub_fp32"]["best_step_s"] / variants["in_process_bf16"]["best_step_s"]
    assert figures["training"]["speedup_best_steps"] == pytest.approx(best, rel=0.01)
