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

    python -m benchmarks.engine_accuracy --imdb-archive aclImdb_v1.tar.gz --quantize      # newest pushed version

`--quantize` asks which int8 graph to ship: the version's fp32 ONNX graph and its dynamic int8 quantizations, per
tensor and per output channel (`quantize_dynamic_int8`), score the same feeds (the server's own tokenization of each
batch), so the figures differ by the graph alone; the fp32 graph stands in for the SavedModel, which the server's
load check holds it to within 1e-4. Each int8 graph also scores the reviews a second time in other batches (a fixed
shuffle): dynamic quantization scales each call by its own activations, so a review's score depends on its batch
mates, as under a batching server's traffic; and a third time row by row, each at its own length, as the model server
runs an int8 graph (`model_server.onnx_engine.row_by_row`). `--graphs` and `--passes` choose. Writes
benchmarks/results/engine-accuracy-quantize.json.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

from benchmarks.common import machine, print_table, write_result

TEXT, PROBABILITY, SIGNATURE = "text", "probability", "serving_default"


def _progress(name: str, done: int, total: int, batch_size: int, started: float) -> None:
    """Prints `done` of `total` reviews and the rate, about every 10 % (and at the end)."""
    if done % max(batch_size, total // 10) < batch_size or done == total:
        print(f"  {name}: {done}/{total} reviews, {done / (time.perf_counter() - started):.1f}/s", flush=True)


def score(model: Any, texts: list[bytes], batch_size: int, name: str) -> tuple[np.ndarray, float]:
    """Every text's probability, in calls of `batch_size` rows; prints progress every ~10 %."""
    probabilities, started = [], time.perf_counter()
    for i in range(0, len(texts), batch_size):
        batch = np.empty(len(texts[i : i + batch_size]), dtype=object)
        batch[:] = texts[i : i + batch_size]
        probabilities.append(np.ravel(model.predict(SIGNATURE, {TEXT: batch})[PROBABILITY]))
        _progress(name, i + len(batch), len(texts), batch_size, started)
    return np.concatenate(probabilities), time.perf_counter() - started


GRAPHS = ("fp32", "int8_per_tensor", "int8_per_channel")
PASSES = ("batched", "reordered", "row_by_row")  # the first pass scores every graph, the others the int8 ones


def quantize_comparison(model: Any, texts: list[bytes], labels: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    """fp32 against per-tensor and per-channel int8 on identical feeds (see the module docstring)."""
    import tempfile

    import onnx
    import onnxruntime as ort

    from model_server.onnx_engine import run_session
    from pipeline_modules.encoder.onnx_graph import quantize_dynamic_int8
    from pipeline_modules.trainer.onnx_export import drop_upper_bound

    engine = model.onnx_engine(SIGNATURE)
    if engine is None or engine.spec.precision != "fp32":
        raise SystemExit(
            f"--quantize needs a version whose {SIGNATURE} the server runs on an fp32 ONNX graph; "
            f"this one runs on {model.engines[SIGNATURE]}"
        )
    fp32 = onnx.load(os.path.join(model.path, engine.spec.graph))
    graphs = {"fp32": fp32}
    with tempfile.TemporaryDirectory(prefix="quantize-") as workdir:
        if "int8_per_tensor" in args.graphs:
            graphs["int8_per_tensor"] = quantize_dynamic_int8(fp32, workdir)
        if "int8_per_channel" in args.graphs:
            graphs["int8_per_channel"] = quantize_dynamic_int8(fp32, workdir, per_channel=True)
    sessions = {
        k: ort.InferenceSession(g.SerializeToString(), providers=["CPUExecutionProvider"]) for k, g in graphs.items()
    }
    natural, shuffled = np.arange(len(texts)), np.random.RandomState(args.seed + 1).permutation(len(texts))
    probabilities: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for number, kind in enumerate(p for p in PASSES if p in args.passes):
        names = list(sessions) if number == 0 else [k for k in sessions if k != "fp32"]
        suffix = "" if number == 0 else f"_{kind}"
        order, rows = (shuffled if kind == "reordered" else natural), kind == "row_by_row"
        scored = {k: np.zeros(len(texts), np.float32) for k in names}
        spent = dict.fromkeys(names, 0.0)
        started = time.perf_counter()
        for i in range(0, len(texts), args.batch_size):
            chosen = order[i : i + args.batch_size]
            batch = np.empty(len(chosen), dtype=object)
            batch[:] = [texts[j] for j in chosen]
            feed = engine.tokenize(batch)
            for k in names:
                session = sessions[k]
                t = time.perf_counter()
                (out,) = run_session(session, [PROBABILITY], {x.name: feed[x.name] for x in session.get_inputs()}, rows)
                spent[k] += time.perf_counter() - t
                scored[k][chosen] = np.ravel(out)
            _progress(f"{kind} pass", i + len(chosen), len(texts), args.batch_size, started)
        probabilities.update({k + suffix: v for k, v in scored.items()})
        seconds.update({k + suffix: v for k, v in spent.items()})
    correct = {k: (p > 0.5) == labels for k, p in probabilities.items()}
    graphs_out: dict[str, Any] = {}
    for k in sessions:
        entry: dict[str, Any] = {
            "accuracy": round(float(correct[k].mean()), 5),
            "graph_rows_per_s": round(len(texts) / seconds[k], 2),
        }
        if k != "fp32" and "fp32" in sessions:
            drop, upper, differ = drop_upper_bound(correct["fp32"], correct[k])
            entry.update(
                {
                    "accuracy_drop": round(drop, 5),
                    "accuracy_drop_upper_95": round(upper, 5),
                    "label_differences_vs_fp32": differ,
                    "max_abs_probability_difference_vs_fp32": float(
                        np.abs(probabilities[k] - probabilities["fp32"]).max()
                    ),
                }
            )
        for kind in ("reordered", "row_by_row"):
            again = probabilities.get(f"{k}_{kind}")
            if again is None:
                continue
            entry[f"{kind}_accuracy"] = round(float(correct[f"{k}_{kind}"].mean()), 5)
            entry[f"{kind}_graph_rows_per_s"] = round(len(texts) / seconds[f"{k}_{kind}"], 2)
            entry[f"{kind}_max_abs_probability_difference"] = float(np.abs(again - probabilities[k]).max())
            entry[f"{kind}_label_changes"] = int(np.sum((again > 0.5) != (probabilities[k] > 0.5)))
            if "fp32" in sessions:
                drop, upper, differ = drop_upper_bound(correct["fp32"], correct[f"{k}_{kind}"])
                entry[f"{kind}_accuracy_drop_upper_95"] = round(upper, 5)
                entry[f"{kind}_label_differences_vs_fp32"] = differ
        graphs_out[k] = entry
    return graphs_out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--imdb-archive", default=os.environ.get("IMDB_ARCHIVE"), help="default: $IMDB_ARCHIVE")
    p.add_argument("--model", default="serving_model/bert_imdb", help="a SavedModel or a base path (newest version)")
    p.add_argument("--limit", type=int, default=0, help="a balanced sample of this many test reviews (0: all)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--quantize", action="store_true", help="fp32 vs per-tensor vs per-channel int8 (see above)")
    p.add_argument("--graphs", nargs="+", choices=GRAPHS, default=list(GRAPHS), help="--quantize: which graphs")
    p.add_argument("--passes", nargs="+", choices=PASSES, default=list(PASSES), help="--quantize: which passes")
    p.add_argument("--output", default=None, help="default benchmarks/results/engine-accuracy[-quantize][-limitN].json")
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
    suffix = f"-limit{args.limit}" if args.limit else ""
    if args.quantize:
        return _quantize_main(ServableModel("model", version, str(model_dir)), texts, labels, args, suffix)
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
    path = write_result(f"engine-accuracy{suffix}", payload, args.output)
    print_table(
        ["engine", "accuracy", "rows/s"], [[r["engine"], r["accuracy"], r["rows_per_s"]] for r in runs.values()]
    )
    print(
        f"drop {payload['accuracy_drop']:+.4f}; labels differ on {payload['label_disagreements']} reviews; max |diff| "
        f"{payload['max_abs_probability_difference']:.3g}\nwrote {path}"
    )
    return 0


def _quantize_main(model: Any, texts: list[bytes], labels: np.ndarray, args: argparse.Namespace, suffix: str) -> int:
    from model_server.onnx_engine import OnnxOptions

    model.load(warmup=False, onnx=OnnxOptions(max_batch_size=0))  # every batch on ONNX Runtime's feeds
    load_before = os.getloadavg()[0]
    try:
        graphs = quantize_comparison(model, texts, labels, args)
    finally:
        model.unload()
    payload = {
        "machine": machine(),
        "model": model.path,
        "version": model.version,
        "reviews": len(texts),
        "batch_size": args.batch_size,
        "graphs": graphs,
        "loadavg_1m_before": round(load_before, 2),
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
    }
    path = write_result(f"engine-accuracy-quantize{suffix}", payload, args.output)
    keys = (
        "accuracy",
        "accuracy_drop",
        "accuracy_drop_upper_95",
        "label_differences_vs_fp32",
        "max_abs_probability_difference_vs_fp32",
        "reordered_label_changes",
        "row_by_row_accuracy",
        "row_by_row_accuracy_drop_upper_95",
        "row_by_row_label_changes",
        "graph_rows_per_s",
        "row_by_row_graph_rows_per_s",
    )
    print_table(["graph", *keys], [[k, *(g.get(key) for key in keys)] for k, g in graphs.items()])
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
