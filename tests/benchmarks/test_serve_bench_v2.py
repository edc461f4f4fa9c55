"""benchmarks/serve_bench.py measures the Open Inference Protocol (``--protocols v2_rest v2_grpc``) beside TF
Serving's API on the same toy model and load."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import serve_bench


def test_serve_bench_measures_v2_beside_tf_servings_api(tmp_path: Path) -> None:
    output = tmp_path / "serve.json"
    args = ["--duration", "0.3", "--concurrency", "1", "--warmup_requests", "1", "--inputs", "short"]
    args += ["--no_batching_off", "--no_plot", "--protocols", "v2_grpc", "rest", "v2_rest", "--output", str(output)]
    assert serve_bench.main(args) == 0

    result = json.loads(output.read_text())
    assert result["settings"]["protocols"] == ["rest", "v2_rest", "v2_grpc"]  # canonical order
    on = result["server"]["batching_on"]
    assert "grpc" not in on
    for protocol in ("rest", "v2_rest", "v2_grpc"):
        stats = on[protocol]["short"]["c1"]
        assert stats["requests"] > 0 and stats["errors"] == 0, (protocol, stats)
