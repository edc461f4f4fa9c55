"""Training benchmark: the whole pipeline on a preset, with per-component wall times, training throughput, model FLOPs
utilisation (MFU) against a matmul peak measured in the same run, and TFMA's metrics on the eval split.

    IMDB_ARCHIVE=/path/to/aclImdb_v1.tar.gz python -m benchmarks.train_bench --preset full   # all 25,000 test reviews
    python -m benchmarks.train_bench --preset smoke                                      # generated data, minutes

Any pipeline flag passes through (`--max-seq-length 256`, `--train-length-bucketing false`, ...). The run gets its
own pipeline root (`pipelines/benchmark-<preset>`, emptied first) so no earlier model is its baseline; the model is
pushed to `--serving-model-dir` as usual. Writes benchmarks/results/train-<preset>.json and prints a table.

MFU = training reviews/s x model FLOPs per review / measured peak. FLOPs per review count the review's real tokens
(capped at `max_seq_length`), so padding that bucketing did not remove counts against utilisation.

    python -m benchmarks.train_bench --speed                  # -> benchmarks/results/train-speed.json (~15 min)
    python -m benchmarks.train_bench --speed --variants hub_fp32 in_process_bf16 --rounds 3

`--speed` times the Trainer's own compiled model (`compile_model`, AdamW) on one fixed batch (32 x 256 real tokens
by default, the preset's encoder) in one process: `hub_fp32` (the encoder through `hub.KerasLayer`, how the Trainer
built it before), `in_process_fp32`, `in_process_bf16` (`--training-precision mixed_bfloat16`) and both with XLA
(`--jit-compile`), in interleaved rounds whose order rotates, medians over all timed steps and over the rounds in
which other processes used under 0.3 cores. MFU is against the same run's matmul peak of the precision that does the
matmuls (float32 or bfloat16, 2048^2, measured before and after the rounds, the best kept).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import (
    ROOT,
    encoder_dimensions,
    matmul_peak_flops,
    print_table,
    served_engine,
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


# name -> how the Trainer builds the model; `hub_fp32` is the baseline every speed-up is a multiple of.
SPEED_VARIANTS: dict[str, dict[str, Any]] = {
    "hub_fp32": {"in_process": False, "training_precision": "float32", "jit_compile": False},
    "in_process_fp32": {"in_process": True, "training_precision": "float32", "jit_compile": False},
    "in_process_bf16": {"in_process": True, "training_precision": "mixed_bfloat16", "jit_compile": False},
    "in_process_fp32_xla": {"in_process": True, "training_precision": "float32", "jit_compile": True},
    "in_process_bf16_xla": {"in_process": True, "training_precision": "mixed_bfloat16", "jit_compile": True},
}
SPEED_BASELINE = "hub_fp32"
QUIET_CORES = 0.3  # a round counts as quiet when other processes used less than this many cores meanwhile


class OtherLoad:
    """Cores that other processes kept busy over an interval: /proc/stat's busy time minus the CPU time of this
    process, of its finished children (a `wrk` run) and of `pids` (a model server it started)."""

    def __init__(self, pids: Sequence[int] = ()) -> None:
        self.pids = tuple(pids)
        self.started = (self._busy_s(), self._own_s(), time.perf_counter())

    def _own_s(self) -> float:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = time.process_time() + children.ru_utime + children.ru_stime
        for pid in self.pids:
            try:
                with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:  # it exited: its time is no longer anyone's
                continue
            own += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
        return own

    @staticmethod
    def _busy_s() -> float:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    def cores(self) -> float:
        busy, own, wall = self._busy_s(), self._own_s(), time.perf_counter()
        return max(((busy - self.started[0]) - (own - self.started[1])) / max(wall - self.started[2], 1e-9), 0.0)


def speed(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    """Training throughput of the build variants at one batch shape, interleaved in one process (see the docstring)."""
    import dataclasses

    import tensorflow as tf

    from pipeline_modules import features
    from pipeline_modules.config import config_for
    from pipeline_modules.environment import resolve_encoder_for
    from pipeline_modules.settings import TrainerSettings
    from pipeline_modules.trainer.model import compile_model

    config = config_for(args.preset, **overrides)
    encoder = resolve_encoder_for(config)
    dims = encoder_dimensions(encoder.path)
    batch, length = args.batch_size, args.seq_length
    flops_per_example = training_flops_per_example(dims, length)
    print(f"Encoder {encoder.handle} {dims}, batch {batch} x {length} tokens; measuring the matmul peaks ...")
    peaks = {
        "float32": [matmul_peak_flops(seconds=args.peak_seconds)],
        "bfloat16": [matmul_peak_flops(seconds=args.peak_seconds, dtype="bfloat16")],
    }

    ids = tf.random.stateless_uniform([batch, length], seed=[5, 6], minval=1000, maxval=20000, dtype=tf.int64)
    inputs = {
        features.INPUT_WORD_IDS: ids,
        features.INPUT_MASK: tf.ones_like(ids),
        features.INPUT_TYPE_IDS: tf.zeros_like(ids),
    }
    labels = tf.constant([[i % 2] for i in range(batch)], tf.int64)
    models, first_steps = {}, {}
    for name in args.variants:
        variant = SPEED_VARIANTS[name]
        changed = dataclasses.replace(
            config, training_precision=variant["training_precision"], jit_compile=variant["jit_compile"]
        )
        settings = TrainerSettings.from_config(changed, encoder)
        tf.keras.utils.set_random_seed(1)
        models[name] = compile_model(settings, settings.hyperparameters, 10_000, in_process=variant["in_process"])
        started = time.perf_counter()
        for _ in range(args.warmup_steps):  # tracing, grappler and (XLA) compilation happen here
            models[name].train_on_batch(inputs, labels)
        first_steps[name] = round(time.perf_counter() - started, 1)
        print(f"  {name}: built, {args.warmup_steps} warm-up step(s) in {first_steps[name]} s", flush=True)

    step_s: dict[str, list[float]] = {name: [] for name in args.variants}
    quiet_step_s: dict[str, list[float]] = {name: [] for name in args.variants}
    rounds = []
    for r in range(args.rounds):
        order = args.variants[r % len(args.variants) :] + args.variants[: r % len(args.variants)]
        record: dict[str, Any] = {"round": r, "loadavg_1m": round(os.getloadavg()[0], 2), "variants": {}}
        for name in order:
            load = OtherLoad()
            times = []
            for _ in range(args.steps):
                started = time.perf_counter()
                models[name].train_on_batch(inputs, labels)
                times.append(time.perf_counter() - started)
            others = load.cores()
            step_s[name] += times
            if others < QUIET_CORES:
                quiet_step_s[name] += times
            record["variants"][name] = {"step_s": [round(t, 3) for t in times], "other_cores": round(others, 2)}
        rounds.append(record)
        print(f"  round {r}: {record['variants']}", flush=True)
    peaks["float32"].append(matmul_peak_flops(seconds=args.peak_seconds))
    peaks["bfloat16"].append(matmul_peak_flops(seconds=args.peak_seconds, dtype="bfloat16"))
    peak = {dtype: max(runs, key=lambda p: p["peak_flops"]) for dtype, runs in peaks.items()}

    variants: dict[str, Any] = {}
    for name in args.variants:
        variant = SPEED_VARIANTS[name]
        in_bf16 = variant["in_process"] and variant["training_precision"] == "mixed_bfloat16"
        rate = batch / statistics.median(step_s[name])
        quiet = batch / statistics.median(quiet_step_s[name]) if quiet_step_s[name] else None
        variants[name] = {
            **variant,
            "examples_per_s": round(rate, 2),
            "examples_per_s_quiet_rounds": round(quiet, 2) if quiet else None,
            "quiet_steps": len(quiet_step_s[name]),
            "median_step_s": round(statistics.median(step_s[name]), 3),
            # stalls only add time (on one 2-core VM half the steps of every variant took ~5.1 s at ~1 core busy):
            # the fastest step shows each build's speed when the machine lets it run
            "best_step_s": round(min(step_s[name]), 3),
            "examples_per_s_best_step": round(batch / min(step_s[name]), 2),
            "warmup_s": first_steps[name],
            "achieved_gflops": round(rate * flops_per_example / 1e9, 1),
            "mfu": round(rate * flops_per_example / peak["bfloat16" if in_bf16 else "float32"]["peak_flops"], 4),
            "mfu_vs_float32_peak": round(rate * flops_per_example / peak["float32"]["peak_flops"], 4),
        }
    base, base_best = (variants.get(SPEED_BASELINE, {}).get(k) for k in ("examples_per_s", "best_step_s"))
    for result in variants.values():
        result["speedup_vs_baseline"] = round(result["examples_per_s"] / base, 3) if base else None
    fastest = max(
        (n for n in variants if n != SPEED_BASELINE), key=lambda n: variants[n]["examples_per_s"], default=None
    )
    payload = {
        "preset": args.preset,
        "batch_size": batch,
        "seq_length": length,
        "train_examples_per_s_baseline": base,
        "train_examples_per_s": variants[fastest]["examples_per_s"] if fastest else None,
        "train_variant": fastest,
        "speedup": variants[fastest]["speedup_vs_baseline"] if fastest else None,
        "speedup_best_steps": round(base_best / variants[fastest]["best_step_s"], 3) if fastest and base_best else None,
        "model_gflops_per_example": round(flops_per_example / 1e9, 3),
        "matmul_peak": peak,
        "matmul_peaks_measured": peaks,
        "encoder": {"handle": encoder.handle, **dims},
        "variants": variants,
        "rounds": rounds,
        "steps_per_round": args.steps,
        "quiet_other_cores": QUIET_CORES,
    }
    path = write_result("train-speed", payload, args.output)
    print_table(
        [
            "variant",
            "examples/s",
            "quiet rounds",
            "x baseline",
            "median step s",
            "best step s",
            "MFU",
            "MFU vs fp32 peak",
            "warm-up s",
        ],
        [
            [
                n,
                v["examples_per_s"],
                v["examples_per_s_quiet_rounds"],
                v["speedup_vs_baseline"],
                v["median_step_s"],
                v["best_step_s"],
                v["mfu"],
                v["mfu_vs_float32_peak"],
                v["warmup_s"],
            ]
            for n, v in variants.items()
        ],
    )
    print(f"peaks GFLOP/s: float32 {peak['float32']['peak_gflops']}, bfloat16 {peak['bfloat16']['peak_gflops']}")
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None, *, log_progress: bool = False) -> int:
    from pipeline_modules.config import add_config_arguments, as_dict, config_for, overrides_from_args
    from pipeline_modules.environment import prepare_data_source, resolve_encoder_for
    from pipeline_modules.features import SERVING_SIGNATURE
    from pipeline_modules.local_runner import configure_logging, run
    from pipeline_modules.run_summary import format_summary, latest_run
    from pipeline_modules.trainer.distribution import training_precision

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="full")
    parser.add_argument("--imdb-archive", default=None, help="archive or folder (default: $IMDB_ARCHIVE, data/)")
    parser.add_argument("--peak-seconds", type=float, default=4.0, help="how long to measure the matmul peak")
    parser.add_argument("--output", default=None, help="default benchmarks/results/train-<preset>.json")
    speed_group = parser.add_argument_group("--speed: training throughput of the ways the Trainer can build the model")
    speed_group.add_argument("--speed", action="store_true", help="time training steps instead of running the pipeline")
    speed_group.add_argument("--variants", nargs="+", default=list(SPEED_VARIANTS), choices=list(SPEED_VARIANTS))
    speed_group.add_argument("--rounds", type=int, default=5)
    speed_group.add_argument("--steps", type=int, default=2, help="timed steps per variant and round")
    speed_group.add_argument("--warmup-steps", type=int, default=2)
    speed_group.add_argument("--batch-size", type=int, default=32)
    speed_group.add_argument("--seq-length", type=int, default=256, help="tokens per example, all of them real")
    add_config_arguments(parser)
    parser.add_argument("--verbose", action="store_true", help="show TFX and Beam INFO logs")
    args = parser.parse_args(argv)
    if log_progress:  # the Trainer's progress lines (reviews/s, ETA), as on the command line; not inside pytest
        configure_logging(args.verbose)

    overrides = overrides_from_args(args)
    if args.speed:
        return speed(args, overrides)
    overrides.setdefault("pipeline_root", f"pipelines/benchmark-{args.preset}")
    config = config_for(args.preset, **overrides)
    if config.pipeline_root_path.exists():
        shutil.rmtree(config.pipeline_root_path)  # a fresh root: no earlier model becomes the baseline

    dtype = "bfloat16" if training_precision(config.training_precision) == "mixed_bfloat16" else "float32"
    peak = matmul_peak_flops(seconds=args.peak_seconds)  # MFU's usual denominator, and that of the dtype trained in
    own_peak = peak if dtype == "float32" else matmul_peak_flops(seconds=args.peak_seconds, dtype=dtype)
    print(f"Matmul peaks: float32 {peak['peak_gflops']}, {dtype} {own_peak['peak_gflops']} GFLOP/s", flush=True)

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
        "training_dtype": dtype,
        "mfu_training_dtype": round(train_rate * flops_per_example / own_peak["peak_flops"], 4),
        "wall_s": round(wall_s, 1),
        "train_examples": len(lengths),
        "train_steps": training.get("train_steps"),
        "train_batch_size": batch_size,
        "mean_real_tokens_per_review": round(sum(lengths) / max(len(lengths), 1), 1),
        "model_gflops_per_review": round(flops_per_example / 1e9, 3),
        "achieved_gflops": round(train_rate * flops_per_example / 1e9, 1),
        "matmul_peak": peak,
        "matmul_peak_training_dtype": own_peak,
        "encoder": {"handle": encoder.handle, **dims},
        "components_s": components,
        "blessed": summary.blessed,
        "infra_blessed": summary.infra_blessed,
        "pushed_destination": summary.pushed_destination,
        "served": served_engine(summary.pushed_destination, overall.get("binary_accuracy"), SERVING_SIGNATURE),
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
            [f"accuracy served ({payload['served']['engine']})", payload["served"]["accuracy"]],
            ["test examples", payload["test_examples"]],
            ["train reviews/s (steady)", payload["train_examples_per_s"]],
            ["model GFLOP per review", payload["model_gflops_per_review"]],
            ["achieved GFLOP/s", payload["achieved_gflops"]],
            ["matmul peak GFLOP/s", peak["peak_gflops"]],
            ["MFU", payload["mfu"]],
            [f"MFU of the {dtype} peak", payload["mfu_training_dtype"]],
            ["pipeline wall s", payload["wall_s"]],
        ],
    )
    print(f"wrote {path} ({ROOT})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(log_progress=True))
