"""Accuracy of a pushed version on the IMDB test split through each engine that can serve it: the one the model
server picks (its ONNX manifest's fp32 or int8 graph, when the load check passes) and TensorFlow (the SavedModel
itself, what the Evaluator measured).

    python -m benchmarks.engine_accuracy --imdb-archive aclImdb_v1.tar.gz        # newest pushed version, 25,000
    python -m benchmarks.engine_accuracy --imdb-archive aclImdb_v1.tar.gz --model serving_model/bert_imdb/7 --limit 2000

Why: the Trainer's int8 gate measures on `engine_eval_examples` eval reviews (2,000 by default); on the whole split
the standard error of the accuracy difference is about a tenth of a point, so the 0.3-point gate can be checked where
it matters. Both engines score the same reviews in the same batches (`--batch-size`, calls of that many rows, as a
client would send them); reported per engine: accuracy, rows/s and the load; between them: the largest and mean
probability difference and the reviews whose label differs. Writes benchmarks/results/engine-accuracy.json.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

from benchmarks.common import machine, print_table, write_result

TEXT, PROBABILITY, SIGNATURE = "text", "probability", "serving_default"


def score(model: Any, texts: list[bytes], batch_size: int, name: str) -> tuple[np.ndarray, float]:
    """Every text's probability, in calls of `batch_size` rows; prints progress every ~10 %."""
    probabilities, started, step = [], time.perf_counter(), max(batch_size, len(texts) // 10)
    for i in range(0, len(texts), batch_size):
        batch = np.empty(len(texts[i : i + batch_size]), dtype=object)
        batch[:] = texts[i : i + batch_size]
        probabilities.append(np.ravel(model.predict(SIGNATURE, {TEXT: batch})[PROBABILITY]))
        done = i + len(batch)
        if done % step < batch_size or done == len(texts):
            rate = done / (time.perf_counter() - started)
            print(f"  {name}: {done}/{len(texts)} reviews, {rate:.1f}/s", flush=True)
    return np.concatenate(probabilities), time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--imdb-archive", default=os.environ.get("IMDB_ARCHIVE"), help="default: $IMDB_ARCHIVE")
    p.add_argument("--model", default="serving_model/bert_imdb", help="a SavedModel or a base path (newest version)")
    p.add_argument("--limit", type=int, default=0, help="a balanced sample of this many test reviews (0: all)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--output", default=None, help="default benchmarks/results/engine-accuracy[-limitN].json")
    args = p.parse_args(argv)
    if not args.imdb_archive:
        p.error("--imdb-archive (or $IMDB_ARCHIVE) is required: the IMDB archive or its unpacked folder")

    from pipeline_modules.scoring.scorers import resolve_saved_model

    model_dir, version = resolve_saved_model(args.model)  # before TensorFlow: a wrong path fails at once
    from model_server.model import ServableModel, import_op_libraries
    from model_server.onnx_engine import OnnxOptions
    from pipeline_modules.data.read import read_imdb

    records = read_imdb(args.imdb_archive, max_per_split=args.limit, seed=args.seed, log=None).splits["eval"]
    texts, labels = [r.text.encode("utf-8") for r in records], np.array([r.label for r in records])
    print(f"{len(texts)} test reviews; version {version} at {model_dir}", flush=True)
    import_op_libraries()
    runs: dict[str, dict[str, Any]] = {}
    probabilities: dict[str, np.ndarray] = {}
    for name, options in (("served", OnnxOptions()), ("tensorflow", OnnxOptions(mode="off"))):
        model = ServableModel("model", version, str(model_dir))
        model.load(warmup=True, onnx=options)
        engine = model.engines[SIGNATURE]
        load_before = os.getloadavg()[0]
        probabilities[name], seconds = score(model, texts, args.batch_size, f"{name} ({engine})")
        model.unload()
        runs[name] = {
            "engine": engine,
            "accuracy": round(float(np.mean((probabilities[name] > 0.5) == labels)), 5),
            "rows_per_s": round(len(texts) / seconds, 2),
            "seconds": round(seconds, 1),
            "loadavg_1m_before": round(load_before, 2),
            "loadavg_1m_after": round(os.getloadavg()[0], 2),
        }
    diff = np.abs(probabilities["served"] - probabilities["tensorflow"])
    payload = {
        "machine": machine(),
        "model": str(model_dir),
        "version": version,
        "reviews": len(texts),
        "batch_size": args.batch_size,
        "served_engine": runs["served"]["engine"],
        "served_accuracy": runs["served"]["accuracy"],
        "tensorflow_accuracy": runs["tensorflow"]["accuracy"],
        "accuracy_drop": round(runs["tensorflow"]["accuracy"] - runs["served"]["accuracy"], 5),
        "max_abs_probability_difference": float(diff.max()),
        "mean_abs_probability_difference": float(diff.mean()),
        "label_disagreements": int(np.sum((probabilities["served"] > 0.5) != (probabilities["tensorflow"] > 0.5))),
        "runs": runs,
    }
    name = "engine-accuracy" if not args.limit else f"engine-accuracy-limit{args.limit}"
    path = write_result(name, payload, args.output)
    print_table(
        ["engine", "accuracy", "rows/s"], [[r["engine"], r["accuracy"], r["rows_per_s"]] for r in runs.values()]
    )
    print(
        f"drop {payload['accuracy_drop']:+.4f}; labels differ on {payload['label_disagreements']} reviews; max |diff| "
        f"{payload['max_abs_probability_difference']:.3g}\nwrote {path}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
