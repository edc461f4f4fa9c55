"""Accuracy levers on one budget: each variant changes one setting of a baseline and trains on the same reviews.

    IMDB_ARCHIVE=/path/to/aclImdb_v1.tar.gz python -m benchmarks.accuracy_levers --train-examples 1500
    python -m benchmarks.accuracy_levers --preset smoke --levers baseline head_only   # generated data, seconds

Variants (one change each from `baseline`: the preset's settings at 128 tokens, head+tail truncation, masked-mean
pooling, AdamW with warm-up and linear decay, one epoch): `head_only`, `seq_256`, `seq_512`, `constant_lr`,
`cls_pooling`, `epochs_2`. Every variant sees the same balanced sample of training reviews in the same order and is
scored on the same balanced sample of test reviews, with the product's own code: `encode_reviews` (the Transform
module's tokenization), `compile_model` and `bucket_by_length` (the Trainer's, `pipeline_modules.trainer`), with
the Trainer's own `TrainerSettings` built from each variant's configuration. No TFX orchestration here, so
a variant costs its training and scoring only. Writes benchmarks/results/accuracy-levers.json and prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, print_table, write_result

LEVERS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "head_only": {"head_fraction": 1.0},
    "seq_256": {"max_seq_length": 256},
    "seq_512": {"max_seq_length": 512},
    "constant_lr": {"learning_rate_schedule": "constant"},
    "cls_pooling": {"pooling": "cls"},
    "epochs_2": {"num_epochs": 2.0},
}


def auc(labels: list[int], scores: list[float]) -> float:
    """Area under the ROC curve by ranks (ties averaged)."""
    import numpy as np

    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = np.asarray(scores)[order]
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    y = np.asarray(labels)
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / max(pos * neg, 1))


class Study:
    """Data, encoder and tokenization shared by the variants (tokenized once per length/truncation setting)."""

    def __init__(self, args: argparse.Namespace) -> None:
        from pipeline_modules import data as imdb_data
        from pipeline_modules.config import config_for
        from pipeline_modules.environment import prepare_data_source, resolve_encoder_for

        overrides: dict[str, Any] = {"learning_rate": args.learning_rate} if args.learning_rate else {}
        if args.pipeline_root:
            overrides["pipeline_root"] = args.pipeline_root
        if args.preset != "smoke":
            overrides["max_seq_length"] = 128
        self.base = config_for(args.preset, **overrides)
        source = prepare_data_source(self.base, args.imdb_source)
        data = imdb_data.read_imdb(source, seed=self.base.data_seed)
        self.train = imdb_data.subsample_balanced(data.splits["train"], args.train_examples, args.seed, "train")
        self.train = imdb_data.shuffled(self.train, args.seed, "train")
        self.test = imdb_data.subsample_balanced(data.splits["eval"], args.test_examples, args.seed, "eval")
        self.encoder = resolve_encoder_for(self.base)
        self.seed = args.seed
        self._tokenized: dict[tuple[int, float], tuple[dict, dict]] = {}

    def tokenized(self, max_seq_length: int, head_fraction: float) -> tuple[dict, dict]:
        import tensorflow as tf

        from pipeline_modules.transform_module import encode_reviews

        key = (max_seq_length, head_fraction)
        if key not in self._tokenized:

            def encode(records: list) -> dict[str, Any]:
                parts = [
                    encode_reviews(
                        tf.constant([r.text for r in records[i : i + 512]]),
                        vocab_file=self.encoder.vocab_file,
                        do_lower_case=self.encoder.do_lower_case,
                        max_seq_length=max_seq_length,
                        head_fraction=head_fraction,
                    )
                    for i in range(0, len(records), 512)
                ]
                return {name: tf.concat([p[name] for p in parts], 0) for name in parts[0]}

            self._tokenized[key] = (encode(self.train), encode(self.test))
        return self._tokenized[key]

    def run(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        import tensorflow as tf

        from pipeline_modules import features
        from pipeline_modules.settings import TrainerSettings
        from pipeline_modules.trainer.data import bucket_by_length
        from pipeline_modules.trainer.model import compile_model

        config = dataclasses.replace(self.base, **changes)
        train_inputs, test_inputs = self.tokenized(config.max_seq_length, config.head_fraction)
        settings = TrainerSettings.from_config(config, self.encoder)
        hparams = settings.hyperparameters
        batch = config.train_batch_size
        steps = max(math.ceil(config.num_epochs * len(self.train) / batch), 1)
        train_labels = tf.constant([r.label for r in self.train], tf.int64)
        test_labels = tf.constant([r.label for r in self.test], tf.int64)

        tf.keras.backend.clear_session()
        tf.keras.utils.set_random_seed(self.seed)
        train_ds = bucket_by_length(
            tf.data.Dataset.from_tensor_slices((train_inputs, train_labels)).repeat().batch(batch),
            batch,
            config.max_seq_length,
            drop_remainder=True,
        ).prefetch(tf.data.AUTOTUNE)
        model = compile_model(settings, hparams, steps)
        started = time.perf_counter()
        model.fit(train_ds, steps_per_epoch=steps, epochs=1, verbose=0)
        train_s = time.perf_counter() - started

        test_ds = bucket_by_length(
            tf.data.Dataset.from_tensor_slices((test_inputs, test_labels)).batch(64),
            64,
            config.max_seq_length,
            drop_remainder=False,
        )
        labels: list[int] = []
        scores: list[float] = []
        started = time.perf_counter()
        for inputs, label in test_ds:
            scores.extend(tf.reshape(model(inputs, training=False), [-1]).numpy().tolist())
            labels.extend(label.numpy().reshape(-1).tolist())
        eval_s = time.perf_counter() - started
        accuracy = sum((s >= 0.0) == bool(y) for s, y in zip(scores, labels, strict=True)) / len(labels)
        truncated = float(tf.reduce_mean(tf.cast(test_inputs[features.INPUT_MASK][:, -1] > 0, tf.float32)))
        return {
            "lever": name,
            "changes": changes,
            "max_seq_length": config.max_seq_length,
            "head_fraction": config.head_fraction,
            "pooling": config.pooling,
            "learning_rate": hparams.learning_rate,
            "learning_rate_schedule": config.learning_rate_schedule,
            "num_epochs": config.num_epochs,
            "train_steps": steps,
            "test_accuracy": round(accuracy, 4),
            "test_auc": round(auc(labels, scores), 4),
            "test_examples": len(labels),
            "test_truncated_fraction": round(truncated, 3),
            "train_s": round(train_s, 1),
            "train_examples_per_s": round(steps * batch / train_s, 2),
            "eval_examples_per_s": round(len(labels) / eval_s, 1),
        }


def result_name(preset: str) -> str:
    return "accuracy-levers" if preset != "smoke" else "accuracy-levers-smoke"


def load_earlier(output: Path, settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Levers already measured in `output` on the same data, encoder and budget (`--merge` adds to them)."""
    if not output.exists():
        return {}
    earlier = json.loads(output.read_text(encoding="utf-8"))
    differing = {k: (earlier.get(k), v) for k, v in settings.items() if earlier.get(k) != v}
    if differing:
        raise SystemExit(f"--merge: {output} was measured with other settings {differing}; not mixing them")
    return {r["lever"]: r for r in earlier["results"]}


def save(output: Path, settings: dict[str, Any], results: dict[str, dict[str, Any]], preset: str) -> Path:
    baseline = results.get("baseline")
    ordered = [results[name] for name in LEVERS if name in results]
    for r in ordered:
        r["accuracy_vs_baseline"] = round(r["test_accuracy"] - baseline["test_accuracy"], 4) if baseline else None
    return write_result(result_name(preset), {**settings, "results": ordered}, output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="demo", help="settings the variants start from (smoke: generated data)")
    parser.add_argument("--imdb-source", default=None, help="archive or folder (default: $IMDB_ARCHIVE, data/)")
    parser.add_argument("--levers", nargs="+", default=list(LEVERS), choices=list(LEVERS))
    parser.add_argument("--train-examples", type=int, default=1500)
    parser.add_argument("--test-examples", type=int, default=2000)
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="peak rate for every variant")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--pipeline-root", default="", help="where the smoke preset writes its generated data")
    parser.add_argument("--output", default=None, help="default benchmarks/results/accuracy-levers[-<preset>].json")
    parser.add_argument("--merge", action="store_true", help="keep the levers already in the output (same settings)")
    args = parser.parse_args(argv)

    study = Study(args)
    print(
        f"{len(study.train)} training and {len(study.test)} test reviews; encoder {study.encoder.handle}",
        flush=True,
    )
    output = Path(args.output) if args.output else RESULTS_DIR / f"{result_name(args.preset)}.json"
    settings = {
        "preset": args.preset,
        "train_examples": len(study.train),
        "test_examples": len(study.test),
        "learning_rate": study.base.learning_rate,
        "train_batch_size": study.base.train_batch_size,
        "seed": args.seed,
        "encoder": study.encoder.handle,
    }
    earlier = load_earlier(output, settings) if args.merge else {}
    results = dict(earlier)
    for n, name in enumerate(args.levers, 1):
        print(f"[{n}/{len(args.levers)}] {name} {LEVERS[name]} ...", flush=True)
        results[name] = study.run(name, LEVERS[name])
        print(f"    {results[name]}", flush=True)
        path = save(output, settings, results, args.preset)  # after every lever: a long study loses nothing
    ordered = [results[name] for name in LEVERS if name in results]
    headers = ["lever", "seq", "acc", "Δ acc", "AUC", "steps", "train rev/s", "train s"]
    rows = [
        [
            r["lever"],
            r["max_seq_length"],
            r["test_accuracy"],
            r["accuracy_vs_baseline"],
            r["test_auc"],
            r["train_steps"],
            r["train_examples_per_s"],
            r["train_s"],
        ]
        for r in ordered
    ]
    print_table(headers, rows)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
