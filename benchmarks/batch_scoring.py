"""Batch scoring benchmark: rows per second of ``bert-imdb-score`` on the IMDB test split, with the pushed model in
this process and through the model server (REST and gRPC).

    python -m benchmarks.batch_scoring --imdb-archive /path/to/aclImdb_v1.tar.gz              # all 25,000 reviews
    python -m benchmarks.batch_scoring --imdb-archive /path/to/aclImdb_v1.tar.gz --limit 2000 # a short run

The test split (``aclImdb/test``, the pipeline's eval split, read by ``pipeline_modules.data``; ``--limit`` takes a
balanced sample) is written once to a CSV file (``id``, ``review``, ``sentiment``), which every mode then scores
end to end with ``pipeline_modules.scoring.score_file``: read, score, write the output and the rejects. Modes run in
interleaved rounds (in-process, REST, gRPC, then again), so a change in machine load hits all of them alike; the
figure is the median over rounds, and each run records the load average around it. The server is this project's
``python -m model_server`` on the same machine (client and server share the cores), started once for all rounds.
Accuracy against the true labels is printed as a check that every mode scored the same reviews the same way.
Writes ``benchmarks/results/batch-scoring.json`` (``batch-scoring-limit<N>.json`` with ``--limit``).
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.common import RESULTS_DIR, ROOT, print_table, write_result

if TYPE_CHECKING:
    from pipeline_modules.scoring.scorers import Scorer

MODES = ("in_process", "rest", "grpc")


def write_test_split(archive: str | None, limit: int, seed: int, path: Path) -> dict[str, Any]:
    """The IMDB test split (balanced sample of `limit` when > 0) as a CSV file; returns its counts."""
    from pipeline_modules import data as imdb_data

    source = imdb_data.locate_imdb_source(archive, project_root=ROOT, network_check=lambda: False)
    started = time.perf_counter()
    records = imdb_data.read_imdb(source, seed=seed, log=None).splits["eval"]
    if limit:
        records = imdb_data.shuffled(imdb_data.subsample_balanced(records, limit, seed, "eval"), seed, "eval")
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "review", "sentiment"])
        writer.writerows([r.id, r.text, r.label] for r in records)
    return {
        "source": source.describe(),
        "reviews": len(records),
        "bytes": path.stat().st_size,
        "read_s": round(time.perf_counter() - started, 2),
    }


def accuracy(output: Path) -> float:
    with open(output, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    hits = sum((row["label"] == "positive") == (row["sentiment"] == "1") for row in rows)
    return hits / len(rows) if rows else 0.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--imdb-archive", default=None, help="archive or folder (default: $IMDB_ARCHIVE, then data/)")
    p.add_argument("--model", default="serving_model/bert_imdb", help="SavedModel or base path (newest version)")
    p.add_argument("--limit", type=int, default=0, help="score a balanced sample of this many reviews (0 = all)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every mode")
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--chunk-size", type=int, default=4096)
    p.add_argument("--concurrency", type=int, default=2, help="calls or requests in flight")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--output", default="", help="result JSON (default benchmarks/results/batch-scoring[-limitN].json)")
    args = p.parse_args(argv)

    from model_server.process import start_server
    from pipeline_modules.scoring import GrpcScorer, InProcessScorer, RestScorer, ScoreOptions, score_file
    from pipeline_modules.scoring.scorers import resolve_saved_model

    model_dir, version = resolve_saved_model(
        str(Path(args.model) if Path(args.model).is_absolute() else ROOT / args.model)
    )
    options = ScoreOptions(
        batch_size=args.batch_size, chunk_size=args.chunk_size, concurrency=args.concurrency, progress=False
    )
    work = Path(tempfile.mkdtemp(prefix="batch-scoring-"))
    source = work / "imdb_test.csv"
    data = write_test_split(args.imdb_archive, args.limit, args.seed, source)
    print(f"{data['reviews']} reviews ({data['bytes'] / 1e6:.1f} MB CSV) from {data['source']}; model {model_dir}")

    base = work / "served" / "bert_imdb"
    base.mkdir(parents=True)
    os.symlink(model_dir, base / str(version or 1))
    server = start_server(
        model_name="bert_imdb", model_base_path=str(base), extra_args=["--access_log_path="],
        log_path=str(work / "server.log"),
    )  # fmt: skip
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in args.modes}
    try:
        server.wait_for_model("bert_imdb", timeout=300)
        scorers: dict[str, Callable[[], Scorer]] = {
            "in_process": lambda: InProcessScorer(str(model_dir)),
            "rest": lambda: RestScorer(server.rest_url, "bert_imdb"),
            "grpc": lambda: GrpcScorer(server.grpc_target, "bert_imdb"),
        }
        for round_number in range(args.rounds):
            for mode in args.modes:
                scorer = scorers[mode]()
                scorer.score(["A warm-up review to trace the model.", "And another."])
                output = work / f"{mode}.csv"
                load_before = os.getloadavg()[0]
                summary = score_file(source, scorer, output, options=options)
                scorer.close()
                run = {
                    "round": round_number,
                    **summary.as_json(),
                    "accuracy": round(accuracy(output), 4),
                    "load_avg_1m_before": round(load_before, 2),
                    "load_avg_1m_after": round(os.getloadavg()[0], 2),
                }
                runs[mode].append(run)
                print(
                    f"  round {round_number} {mode:10s} {run['rows_per_s']:8.1f} rows/s  {run['seconds']:7.1f} s  "
                    f"scored {run['scored']}, rejected {run['rejected']}, accuracy {run['accuracy']:.4f}, "
                    f"load {run['load_avg_1m_before']:.2f} -> {run['load_avg_1m_after']:.2f}",
                    flush=True,
                )
    finally:
        server_exit = server.stop()

    medians = {mode: statistics.median(r["rows_per_s"] for r in found) for mode, found in runs.items() if found}
    payload = {
        **{f"{mode}_rows_per_s": round(value, 1) for mode, value in medians.items()},
        "reviews": data["reviews"],
        "settings": {
            "model": str(model_dir),
            "limit": args.limit,
            "rounds": args.rounds,
            "batch_size": args.batch_size,
            "chunk_size": args.chunk_size,
            "concurrency": args.concurrency,
            "format": "csv",
        },
        "data": data,
        "peak_rss_mb_client": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "server_exit_code": server_exit,
        "runs": runs,
    }
    default = RESULTS_DIR / (f"batch-scoring-limit{args.limit}.json" if args.limit else "batch-scoring.json")
    path = write_result("batch-scoring", payload, args.output or default)
    print_table(
        ["mode", "median rows/s", "runs", "accuracy", "rejected"],
        [
            [mode, medians[mode], len(found), found[-1]["accuracy"], found[-1]["rejected"]]
            for mode, found in runs.items()
            if found
        ],
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
