"""benchmarks/serve_bench.py end to end on the toy model: short runs, every protocol x input x concurrency."""

from __future__ import annotations

import json
import math
from pathlib import Path

from benchmarks import serve_bench

REQUIRED = (
    "in_process_examples_per_s",
    "server_examples_per_s_c32",
    "p50_ms_short_c1",
    "p99_ms_long_c32",
    "server_vs_in_process_c32",
)


def _positive(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def _phases(tree: dict):
    """Every stats dict below ``tree`` (they are the dicts with a ``requests`` count)."""
    for value in tree.values():
        if isinstance(value, dict):
            if "requests" in value:
                yield value
            else:
                yield from _phases(value)


def test_serve_bench_on_the_toy_model(tmp_path: Path) -> None:
    output = tmp_path / "serve.json"
    args = ["--duration", "0.5", "--concurrency", "1", "2", "--warmup_requests", "1", "--output", str(output)]
    assert serve_bench.main(args) == 0

    result = json.loads(output.read_text())
    for key in REQUIRED:
        assert _positive(result[key]), (key, result[key])
    assert result["server_examples_per_s_c32_protocol"] in ("rest", "grpc")
    assert result["headline_concurrency"] == 2
    assert {"date", "machine", "settings"} <= result.keys()
    assert result["settings"]["concurrency"] == [1, 2]
    assert result["settings"]["max_batch_size"] == 2

    for kind in ("short", "long"):
        assert set(result["in_process"][kind]) == {"c1_batch1", "batch2"}
    on = result["server"]["batching_on"]
    for protocol in ("rest", "grpc"):
        for kind in ("short", "long"):
            assert set(on[protocol][kind]) == {"c1", "c2"}, (protocol, kind)
        assert set(result["server"]["batching_off"][protocol]) == {"short"}
        assert set(result["server"]["batching_off"][protocol]["short"]) == {"c2"}
    assert on["server_exit_code"] == 0

    phases = list(_phases({"in_process": result["in_process"], "server": result["server"]}))
    assert len(phases) == 4 + 8 + 2
    for stats in phases:
        assert stats["errors"] == 0, stats["first_errors"]
        assert stats["requests"] > 0
        for metric in ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "instances_per_s"):
            assert _positive(stats[metric]), (metric, stats)
        assert stats["p50_ms"] <= stats["p95_ms"] <= stats["p99_ms"]

    png = tmp_path / "latency-vs-concurrency.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
