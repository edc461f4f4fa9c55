"""Beam speed-up of the data components: ExampleGen, StatisticsGen and Transform with 1 vs N DirectRunner workers.

    IMDB_ARCHIVE=/path/to/aclImdb_v1.tar.gz python -m benchmarks.beam_scaling --preset full --workers 1 2

Each setting is a partial pipeline run (up to Transform) in its own pipeline root, in multi-processing mode, so the
only difference is the worker count. Writes benchmarks/results/beam-scaling.json and prints a table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import print_table, write_result
from pipeline_modules.config import config_for
from pipeline_modules.environment import prepare_data_source, resolve_encoder_for
from pipeline_modules.local_runner import run
from pipeline_modules.run_summary import latest_run

COMPONENTS = ("ImdbExampleGen", "StatisticsGen", "Transform")


def measure(preset: str, workers: int, imdb_archive: str | None, root: Path) -> dict[str, Any]:
    """One partial run (up to Transform) with `workers` DirectRunner workers; wall times from ML Metadata."""
    config = config_for(
        preset,
        pipeline_root=str(root / f"workers-{workers}"),
        serving_model_dir=str(root / "serving"),
        beam_pipeline_args=("--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"),
    )
    source = prepare_data_source(config, imdb_archive)
    encoder = resolve_encoder_for(config)
    started = time.monotonic()
    run(config, source=source, encoder=encoder, to_component="Transform")
    wall = time.monotonic() - started
    summary = latest_run(config.metadata_path_resolved, config.pipeline_name)
    per_component = {c.component_id: round(c.wall_s, 2) for c in summary.components}
    return {
        "workers": workers,
        "wall_s": round(wall, 2),
        "components_s": {name: per_component.get(name) for name in COMPONENTS},
        "data_components_s": round(sum(per_component.get(name) or 0.0 for name in COMPONENTS), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="full")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--imdb-archive", default=None)
    parser.add_argument("--output", default=None, help="default benchmarks/results/beam-scaling.json")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="beam-scaling-") as tmp:
        results = [measure(args.preset, n, args.imdb_archive, Path(tmp)) for n in args.workers]
    base = results[0]["data_components_s"]
    for result in results:
        result["speedup_vs_first"] = (
            round(base / result["data_components_s"], 3) if result["data_components_s"] else None
        )
    payload = {
        "settings": {"preset": args.preset, "runner": "DirectRunner multi_processing", "to_component": "Transform"},
        "results": results,
    }
    path = write_result("beam-scaling", payload, args.output)
    print()
    print_table(
        ["workers", "ExampleGen s", "StatisticsGen s", "Transform s", "sum s", "speed-up"],
        [
            [
                r["workers"],
                *(r["components_s"][name] for name in COMPONENTS),
                r["data_components_s"],
                r["speedup_vs_first"],
            ]
            for r in results
        ],
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
