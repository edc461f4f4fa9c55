"""Training benchmark: the whole pipeline on a preset, with per-component wall times, training throughput, model FLOPs
utilisation (MFU) against a matmul peak measured in the same run, and TFMA's metrics on the eval split.

    IMDB_ARCHIVE=/path/to/aclImdb_v1.tar.gz python -m benchmarks.train_bench --preset full   # all 25,000 test reviews
    python -m benchmarks.train_bench --preset smoke                                      # generated data, minutes

Any pipeline flag passes through (`--max-seq-length 256`, `--train-length-bucketing false`, ...). The run gets its
own pipeline root (`pipelines/benchmark-<preset>`, emptied first) so no earlier model is its baseline; the model is
pushed to `--serving-model-dir` as usual. Writes benchmarks/results/train-<preset>.json and prints a table.

MFU = training reviews/s x model FLOPs per review / measured peak. FLOPs per review count the review's real tokens
(capped at `max_seq_length`), so padding that bucketing did not remove counts against utilisation.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    ROOT,
    encoder_dimensions,
    matmul_peak_flops,
    print_table,
    training_flops_per_example,
    write_result,
)

KEY_METRICS = ("binary_accuracy", "auc", "precision", "recall", "calibration", "example_count")


def _artifact_uri(summary: Any, type_name: str, producer: str) -> str | None:
    """The URI of this run's artifact of `type_name` written by `producer` (TFX puts the component id in the path)."""
    for artifact in sorted(summary.artifacts.get(type_name, []), key=lambda a: -a.id):
        if f"/{producer}/" in artifact.uri:
            return artifact.uri
    return None


def real_token_lengths(transformed_examples_uri: str, split: str = "Split-train") -> list[int]:
    """Per review, the tokens the encoder really saw (the input mask's sum) in Transform's output."""
    import tensorflow as tf

    from pipeline_modules import features

    files = tf.io.gfile.glob(f"{transformed_examples_uri}/{split}/*")
    spec = {features.INPUT_MASK: tf.io.VarLenFeature(tf.int64)}
    dataset = (
        tf.data.TFRecordDataset(files, compression_type="GZIP")
        .batch(1024)
        .map(lambda records: tf.sparse.reduce_sum(tf.io.parse_example(records, spec)[features.INPUT_MASK], axis=1))
    )
    return [int(n) for batch in dataset for n in batch.numpy()]


def steady_rate(curve_path: Path) -> tuple[float, int]:
    """Reviews/s between the first and last point of the training curve: graph building and the first steps excluded."""
    curve = json.loads(curve_path.read_text())
    steps = curve["steps"]
    if len(steps) < 2:
        raise ValueError(f"{curve_path}: fewer than two points on the training curve")
    first, last = steps[0], steps[-1]
    rate = (last["step"] - first["step"]) * curve["batch_size"] / max(last["elapsed_s"] - first["elapsed_s"], 1e-9)
    return rate, int(curve["batch_size"])


def main(argv: list[str] | None = None, *, log_progress: bool = False) -> int:
    from pipeline_modules.config import add_config_arguments, as_dict, config_for, overrides_from_args
    from pipeline_modules.environment import prepare_data_source, resolve_encoder_for
    from pipeline_modules.local_runner import configure_logging, run
    from pipeline_modules.run_summary import format_summary, latest_run

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="full")
    parser.add_argument("--imdb-archive", default=None, help="archive or folder (default: $IMDB_ARCHIVE, data/)")
    parser.add_argument("--peak-seconds", type=float, default=4.0, help="how long to measure the matmul peak")
    parser.add_argument("--output", default=None, help="default benchmarks/results/train-<preset>.json")
    add_config_arguments(parser)
    parser.add_argument("--verbose", action="store_true", help="show TFX and Beam INFO logs")
    args = parser.parse_args(argv)
    if log_progress:  # the Trainer's progress lines (reviews/s, ETA), as on the command line; not inside pytest
        configure_logging(args.verbose)

    overrides = overrides_from_args(args)
    overrides.setdefault("pipeline_root", f"pipelines/benchmark-{args.preset}")
    config = config_for(args.preset, **overrides)
    if config.pipeline_root_path.exists():
        shutil.rmtree(config.pipeline_root_path)  # a fresh root: no earlier model becomes the baseline

    print("Measuring the float32 matmul peak ...", flush=True)
    peak = matmul_peak_flops(seconds=args.peak_seconds)
    print(f"  {peak['peak_gflops']} GFLOP/s", flush=True)

    source = prepare_data_source(config, args.imdb_archive)
    encoder = resolve_encoder_for(config)
    started = time.monotonic()
    exit_code = run(config, source=source, encoder=encoder)
    wall_s = time.monotonic() - started
    summary = latest_run(config.metadata_path_resolved, config.pipeline_name)
    if exit_code != 0:
        print(f"The pipeline failed (exit {exit_code}); no figures written.", file=sys.stderr)
        return exit_code

    model_run = _artifact_uri(summary, "ModelRun", "Trainer")
    transformed = _artifact_uri(summary, "Examples", "Transform")
    if model_run is None or transformed is None:
        raise LookupError("The run recorded no Trainer ModelRun or Transform Examples artifact")
    train_rate, batch_size = steady_rate(Path(model_run) / "training_curve.json")
    training = json.loads((Path(model_run) / "training_summary.json").read_text())
    lengths = real_token_lengths(transformed)
    dims = encoder_dimensions(encoder.path)
    flops_per_example = sum(training_flops_per_example(dims, n) for n in lengths) / max(len(lengths), 1)
    mfu = train_rate * flops_per_example / peak["peak_flops"]

    metrics = summary.eval_metrics
    overall = metrics.get("Overall", {})
    components = {c.component_id: round(c.wall_s, 1) for c in summary.components}
    payload = {
        "preset": args.preset,
        "test_accuracy": overall.get("binary_accuracy"),
        "test_auc": overall.get("auc"),
        "test_examples": int(overall.get("example_count", 0)),
        "train_examples_per_s": round(train_rate, 2),
        "mfu": round(mfu, 4),
        "wall_s": round(wall_s, 1),
        "train_examples": len(lengths),
        "train_steps": training.get("train_steps"),
        "train_batch_size": batch_size,
        "mean_real_tokens_per_review": round(sum(lengths) / max(len(lengths), 1), 1),
        "model_gflops_per_review": round(flops_per_example / 1e9, 3),
        "achieved_gflops": round(train_rate * flops_per_example / 1e9, 1),
        "matmul_peak": peak,
        "encoder": {"handle": encoder.handle, **dims},
        "components_s": components,
        "blessed": summary.blessed,
        "infra_blessed": summary.infra_blessed,
        "pushed_destination": summary.pushed_destination,
        "trainer_final": {k: v for k, v in training.items() if k not in ("hyperparameters",)},
        "hyperparameters": training.get("hyperparameters"),
        "eval_slices": {
            name: {k: v for k, v in values.items() if k in KEY_METRICS} for name, values in metrics.items()
        },
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in as_dict(config).items()},
    }
    path = write_result(f"train-{args.preset}", payload, args.output)

    print()
    print(format_summary(summary))
    print()
    print_table(
        ["figure", "value"],
        [
            ["test accuracy", payload["test_accuracy"]],
            ["test examples", payload["test_examples"]],
            ["train reviews/s (steady)", payload["train_examples_per_s"]],
            ["model GFLOP per review", payload["model_gflops_per_review"]],
            ["achieved GFLOP/s", payload["achieved_gflops"]],
            ["matmul peak GFLOP/s", peak["peak_gflops"]],
            ["MFU", payload["mfu"]],
            ["pipeline wall s", payload["wall_s"]],
        ],
    )
    print(f"wrote {path} ({ROOT})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(log_progress=True))
