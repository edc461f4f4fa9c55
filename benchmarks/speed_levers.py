"""Speed levers, one at a time, each in a fresh process: training steps/s and in-process serving latency.

    IMDB_ARCHIVE=/path/to/aclImdb_v1.tar.gz python -m benchmarks.speed_levers
    python -m benchmarks.speed_levers --preset smoke --steps 3        # generated data, 2-layer encoder, seconds

Training (real reviews, the preset's encoder and `max_seq_length`, batch of the preset): `baseline` pads every review
to `max_seq_length` (Transform's output as is) and prefetches; `bucketing` groups batches by length and pads to the
batch's longest (`--train-length-bucketing`, the default now); `xla` compiles the train step (`--jit-compile`);
`no_prefetch`; `one_thread` runs TensorFlow's ops on one thread (intra- and inter-op) instead of all cores;
`bf16_bucketing` and `bf16_xla_bucketing`: the Trainer's path with `--training-precision mixed_bfloat16`, without and
with `--jit-compile` (under XLA, batches padded to their bucket's edge: one compilation per edge, inside the timed
steps, as a Trainer run pays them).
The input pipeline alone (parse serialized transformed examples, with and without `cache()`) is timed too: it has
to outrun the model for prefetching and caching to matter at all.

Serving (in-process, the exported graph's path: tokenize, then the network): one short sentence and a batch of 32
full reviews, padded to `max_seq_length` vs to a length bucket, and with the network XLA-compiled.
Writes benchmarks/results/speed-levers.json and prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from typing import Any

from benchmarks.common import ROOT, print_table, write_result
from stacks.compat import LEGACY_KERAS_ENV

TRAIN_LEVERS: dict[str, dict[str, Any]] = {
    "baseline": {"bucketing": False},
    "bucketing": {"bucketing": True},
    "xla": {"bucketing": False, "jit_compile": True, "max_steps": 4},  # ~25 s a step here: a few tell enough
    "no_prefetch": {"bucketing": False, "prefetch": False},
    "one_thread": {"bucketing": False, "threads": 1},
    # the Trainer's own path (bucketing on) in bfloat16, without and with XLA (which then pads to bucket edges)
    "bf16_bucketing": {"bucketing": True, "training_precision": "mixed_bfloat16"},
    "bf16_xla_bucketing": {"bucketing": True, "training_precision": "mixed_bfloat16", "jit_compile": True},
}
SERVE_LEVERS: dict[str, dict[str, Any]] = {
    "pad_to_max": {"buckets": False},
    "length_buckets": {"buckets": True},
    "length_buckets_xla": {"buckets": True, "jit_compile": True},
}
SHORT = "A wonderful film with a great cast."


def _setup(args: argparse.Namespace) -> tuple[Any, list[Any], Any]:
    from pipeline_modules import data as imdb_data
    from pipeline_modules.config import config_for
    from pipeline_modules.environment import prepare_data_source, resolve_encoder_for

    overrides = {"pipeline_root": args.pipeline_root} if args.pipeline_root else {}
    config = config_for(args.preset, **overrides)
    source = prepare_data_source(config, args.imdb_source)
    records = imdb_data.read_imdb(source, seed=config.data_seed, log=None).splits["train"][: args.reviews]
    return config, records, resolve_encoder_for(config)


def _encode(texts: Any, config: Any, encoder: Any) -> dict[str, Any]:
    """The Transform module's tokenization of a string tensor, at the preset's length and truncation."""
    from pipeline_modules.transform_module import encode_reviews

    return encode_reviews(
        texts,
        vocab_file=encoder.vocab_file,
        do_lower_case=encoder.do_lower_case,
        max_seq_length=config.max_seq_length,
        head_fraction=config.head_fraction,
    )


def train_lever(args: argparse.Namespace, lever: dict[str, Any]) -> dict[str, Any]:
    import tensorflow as tf

    if lever.get("threads"):
        tf.config.threading.set_intra_op_parallelism_threads(lever["threads"])
        tf.config.threading.set_inter_op_parallelism_threads(lever["threads"])
    from pipeline_modules.settings import TrainerSettings
    from pipeline_modules.trainer.data import bucket_by_length
    from pipeline_modules.trainer.model import compile_model

    config, records, encoder = _setup(args)
    inputs = _encode(tf.constant([r.text for r in records]), config, encoder)
    labels = tf.constant([r.label for r in records], tf.int64)
    batch = config.train_batch_size
    dataset = tf.data.Dataset.from_tensor_slices((inputs, labels)).repeat().batch(batch)
    if lever.get("bucketing"):
        # as the Trainer's input_fn: under XLA, padded to the bucket's edge (one compilation per edge)
        pad = bool(lever.get("jit_compile"))
        dataset = bucket_by_length(dataset, batch, config.max_seq_length, drop_remainder=True, pad_to_bucket=pad)
    if lever.get("prefetch", True):
        dataset = dataset.prefetch(tf.data.AUTOTUNE)
    settings = TrainerSettings.from_config(config, encoder)
    settings = dataclasses.replace(
        settings,
        jit_compile=bool(lever.get("jit_compile")),
        training_precision=lever.get("training_precision", settings.training_precision),
    )
    tf.keras.utils.set_random_seed(1)
    model = compile_model(settings, settings.hyperparameters, args.warmup_steps + args.steps)
    iterator = iter(dataset)
    step_times = []
    steps = min(args.steps, lever.get("max_steps", args.steps))
    for step in range(args.warmup_steps + steps):
        started = time.perf_counter()
        model.train_on_batch(*next(iterator))
        if step >= args.warmup_steps:
            step_times.append(time.perf_counter() - started)
    # Throughput over all timed steps, not the median step: with bucketing, steps differ by design (short batches are
    # the point), so only the total time says what it saves.
    return {
        "median_step_s": round(sorted(step_times)[len(step_times) // 2], 4),
        "mean_step_s": round(sum(step_times) / len(step_times), 4),
        "train_examples_per_s": round(batch * len(step_times) / sum(step_times), 2),
        "steps": len(step_times),
        "batch_size": batch,
        "max_seq_length": config.max_seq_length,
    }


def input_pipeline(args: argparse.Namespace) -> dict[str, Any]:
    """Examples/s of parsing serialized transformed examples (what the Trainer reads), without and with cache()."""
    import tensorflow as tf

    from pipeline_modules import features

    config, records, encoder = _setup(args)
    inputs = {k: v.numpy() for k, v in _encode(tf.constant([r.text for r in records]), config, encoder).items()}
    serialized = []
    for i, record in enumerate(records):
        feature = {k: tf.train.Feature(int64_list=tf.train.Int64List(value=v[i])) for k, v in inputs.items()}
        feature[features.TRANSFORMED_LABEL_KEY] = tf.train.Feature(int64_list=tf.train.Int64List(value=[record.label]))
        serialized.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    spec = {k: tf.io.FixedLenFeature([config.max_seq_length], tf.int64) for k in inputs}
    spec[features.TRANSFORMED_LABEL_KEY] = tf.io.FixedLenFeature([1], tf.int64)
    results = {}
    for name, cache in (("parse", False), ("parse_cached", True)):
        dataset = tf.data.Dataset.from_tensor_slices(serialized).batch(config.train_batch_size)
        dataset = dataset.map(lambda x: tf.io.parse_example(x, spec), num_parallel_calls=tf.data.AUTOTUNE)
        if cache:
            dataset = dataset.cache()
        for _ in dataset:  # first pass fills the cache
            pass
        started, count = time.perf_counter(), 0
        for _ in range(3):
            for batch in dataset:
                count += int(batch[features.TRANSFORMED_LABEL_KEY].shape[0])
        results[f"{name}_examples_per_s"] = round(count / (time.perf_counter() - started), 1)
    return results


def serve_lever(args: argparse.Namespace, lever: dict[str, Any]) -> dict[str, Any]:
    import tensorflow as tf

    from pipeline_modules.trainer.export import serving_buckets, trim_to_length_bucket
    from pipeline_modules.trainer.model import build_model

    config, records, encoder = _setup(args)
    model = build_model(encoder.path, pooling=config.pooling, dropout=0.0)
    buckets = serving_buckets(config.serving_length_buckets, config.max_seq_length)

    @tf.function(jit_compile=bool(lever.get("jit_compile")))  # type: ignore[untyped-decorator]
    def network(inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        return tf.sigmoid(model(inputs, training=False))

    encode = tf.function(
        lambda text: _encode(text, config, encoder), input_signature=[tf.TensorSpec([None], tf.string)]
    )

    def predict(texts: list[str]) -> Any:
        inputs = encode(tf.constant(texts))
        if lever.get("buckets"):
            inputs = trim_to_length_bucket(inputs, buckets)
        return network(inputs).numpy()

    long_batch = [r.text for r in records[:32]]
    out = {}
    for name, texts, repeats in (
        ("short_batch1", [SHORT], args.serve_repeats * 4),
        ("long_batch32", long_batch, args.serve_repeats),
    ):
        for _ in range(3):
            predict(texts)  # trace / compile every bucket this input uses
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            predict(texts)
            times.append(time.perf_counter() - started)
        times.sort()
        out[f"{name}_p50_ms"] = round(times[len(times) // 2] * 1000, 2)
        out[f"{name}_examples_per_s"] = round(len(texts) / times[len(times) // 2], 1)
    return out


def _child(args: argparse.Namespace) -> int:
    kind, name = args.child.split(":", 1)
    if kind == "train":
        result = train_lever(args, TRAIN_LEVERS[name])
    elif kind == "serve":
        result = serve_lever(args, SERVE_LEVERS[name])
    else:
        result = input_pipeline(args)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


def _run_child(argv: list[str], job: str) -> dict[str, Any]:
    env = {**os.environ, **LEGACY_KERAS_ENV, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.speed_levers", *argv, "--child", job],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{job} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="demo", help="encoder, max_seq_length and batch size come from it")
    parser.add_argument("--imdb-source", default=None, help="archive or folder (default: $IMDB_ARCHIVE, data/)")
    parser.add_argument("--reviews", type=int, default=512, help="training reviews to cycle through")
    parser.add_argument("--steps", type=int, default=16, help="timed training steps per lever")
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--serve-repeats", type=int, default=10)
    parser.add_argument("--train-levers", nargs="*", default=list(TRAIN_LEVERS), choices=list(TRAIN_LEVERS))
    parser.add_argument("--serve-levers", nargs="*", default=list(SERVE_LEVERS), choices=list(SERVE_LEVERS))
    parser.add_argument("--pipeline-root", default="", help="where the smoke preset writes its generated data")
    parser.add_argument("--output", default=None, help="default benchmarks/results/speed-levers[-smoke].json")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)

    passthrough = [
        f"--preset={args.preset}",
        f"--reviews={args.reviews}",
        f"--steps={args.steps}",
        f"--warmup-steps={args.warmup_steps}",
        f"--serve-repeats={args.serve_repeats}",
    ]
    if args.imdb_source:
        passthrough.append(f"--imdb-source={args.imdb_source}")
    if args.pipeline_root:
        passthrough.append(f"--pipeline-root={args.pipeline_root}")

    train: dict[str, Any] = {}
    for name in args.train_levers:
        print(f"train lever {name} ...", flush=True)
        train[name] = _run_child(passthrough, f"train:{name}")
        print(f"  {train[name]}", flush=True)
    print("input pipeline ...", flush=True)
    pipeline_rates = _run_child(passthrough, "input:pipeline")
    serve: dict[str, Any] = {}
    for name in args.serve_levers:
        print(f"serve lever {name} ...", flush=True)
        serve[name] = _run_child(passthrough, f"serve:{name}")
        print(f"  {serve[name]}", flush=True)

    base_rate = train.get("baseline", {}).get("train_examples_per_s")
    for result in train.values():
        result["speedup_vs_baseline"] = round(result["train_examples_per_s"] / base_rate, 3) if base_rate else None
    name = "speed-levers" if args.preset != "smoke" else "speed-levers-smoke"
    path = write_result(
        name,
        {"preset": args.preset, "train": train, "input_pipeline": pipeline_rates, "serve": serve},
        args.output,
    )
    print_table(
        ["train lever", "reviews/s", "× baseline", "mean step s", "median step s", "steps"],
        [
            [k, v["train_examples_per_s"], v["speedup_vs_baseline"], v["mean_step_s"], v["median_step_s"], v["steps"]]
            for k, v in train.items()
        ],
    )
    print(f"input pipeline: {pipeline_rates}")
    print_table(
        ["serve lever", "short b1 p50 ms", "long b32 p50 ms", "long b32 reviews/s"],
        [
            [k, v["short_batch1_p50_ms"], v["long_batch32_p50_ms"], v["long_batch32_examples_per_s"]]
            for k, v in serve.items()
        ],
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
