"""Beam speed-up of the data components: ExampleGen, StatisticsGen and Transform with 1 vs N DirectRunner workers.

    IMDB_ARCHIVE=/path/to/aclImdb_v1.tar.gz python benchmarks/beam_scaling.py --preset full --workers 1 2

Each setting is a partial pipeline run (up to Transform) in its own pipeline root, in multi-processing mode, so the
only difference is the worker count. Writes benchmarks/results/beam-scaling.json and prints a table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline_modules.config import config_for  # noqa: E402
from pipeline_modules.local_runner import prepare_data_source, resolve_encoder_for, run  # noqa: E402
from pipeline_modules.run_summary import latest_run  # noqa: E402

COMPONENTS = ("ImdbExampleGen", "StatisticsGen", "Transform")


def measure(preset: str, workers: int, imdb_archive: str | None, root: Path) -> dict:
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="full")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--imdb-archive", default=None)
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "beam-scaling.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="beam-scaling-") as tmp:
        results = [measure(args.preset, n, args.imdb_archive, Path(tmp)) for n in args.workers]
    base = results[0]["data_components_s"]
    for result in results:
        result["speedup_vs_first"] = (
            round(base / result["data_components_s"], 3) if result["data_components_s"] else None
        )
    report = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cores": os.cpu_count(), "python": platform.python_version()},
        "settings": {"preset": args.preset, "runner": "DirectRunner multi_processing", "to_component": "Transform"},
        "results": results,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"\n{'workers':>7} {'ExampleGen s':>12} {'StatisticsGen s':>15} {'Transform s':>11} {'sum s':>8}"
        f" {'speed-up':>8}"
    )
    for r in results:
        c = r["components_s"]
        print(
            f"{r['workers']:>7} {c['ImdbExampleGen']:>12} {c['StatisticsGen']:>15} {c['Transform']:>11} "
            f"{r['data_components_s']:>8} {r['speedup_vs_first']:>8}"
        )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
