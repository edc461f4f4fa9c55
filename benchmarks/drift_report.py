"""Drift report benchmark: wall time of `bert-imdb-drift` on 10,000 logged requests.

    python -m benchmarks.drift_report                       # synthetic IMDB-length reviews, synthetic baseline
    python -m benchmarks.drift_report --requests 50000 --statistics pipelines/demo/StatisticsGen/statistics/26

The log is written by the model server's own writer (``model_server.logs.RequestLog``: masking, JSON lines, one line
per instance) from reviews whose lengths follow IMDB's (log-normal, median about 170 words). The baseline is TFDV
statistics of as many other such reviews (or ``--statistics``). Each repeat runs the whole report in-process: read and
filter the log, derive word_count / length_bucket, TFDV statistics of the window, both comparisons, and all files
(anomalies, summaries, plot); "command s" is one run of ``python -m pipeline_modules.drift`` in a fresh interpreter
(TensorFlow and TFDV imports included). Prints a table, writes ``benchmarks/results/drift-report.json``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import print_table, write_result

WORDS = (
    "the", "film", "movie", "story", "acting", "plot", "characters", "scene", "music", "director", "great", "bad",
    "good", "boring", "wonderful", "awful", "and", "of", "to", "a", "in", "is", "it", "that", "was", "this", "for",
    "with", "as", "but", "on", "not", "his", "her", "they", "one", "all", "just", "so", "like",
)  # fmt: skip


def reviews(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(max(3, int(rng.lognormvariate(5.15, 0.65))))) for _ in range(n)]


def write_log(path: Path, texts: list[str], seed: int = 0) -> float:
    """Logs one request per text through RequestLog; returns the writer's wall time (submit to flushed file)."""
    import numpy as np

    from model_server.hints import SignatureHints
    from model_server.logs import RequestLog
    from model_server.metrics import Metrics
    from model_server.model import SignatureInfo

    signature = SignatureInfo(
        "serving_default", {}, {}, "tensorflow/serving/predict", SignatureHints(input_features={"text": "review"})
    )
    rng = random.Random(seed)
    started = time.perf_counter()
    request_log = RequestLog(str(path), 1.0, Metrics(), max_pending=len(texts) + 1)
    for i, text in enumerate(texts):
        p = rng.random()
        outputs = {
            "probability": np.array([p], dtype=np.float32),
            "label": np.array([b"positive" if p >= 0.5 else b"negative"], dtype=object),
        }
        request_log.submit(
            f"r{i}", "bert_imdb", 1, signature, {"text": np.array([text.encode()], dtype=object)}, outputs
        )
    request_log.close(timeout=600)
    return time.perf_counter() - started


def training_statistics(folder: Path, n: int) -> Path:
    import pandas as pd
    import tensorflow_data_validation as tfdv

    from pipeline_modules import features

    texts = reviews(n, seed=1)
    counts = [len(t.split()) for t in texts]
    frame = pd.DataFrame(
        {
            "review": texts,
            "label": [i % 2 for i in range(n)],
            "rating": [9 if i % 2 else 2 for i in range(n)],
            "word_count": counts,
            "length_bucket": [features.length_bucket(c) for c in counts],
        }
    )
    (folder / "Split-train").mkdir(parents=True)
    (folder / "Split-train" / "FeatureStats.pb").write_bytes(
        tfdv.generate_statistics_from_dataframe(frame).SerializeToString()
    )
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--training-reviews", type=int, default=10_000, help="size of the synthetic baseline")
    parser.add_argument("--statistics", default="", help="training statistics to compare with instead")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=None, help="default benchmarks/results/drift-report.json")
    args = parser.parse_args(argv)

    from pipeline_modules.drift.cli import run_drift_report
    from pipeline_modules.drift.request_log import scan_request_log, select_version
    from pipeline_modules.drift.statistics import serving_statistics
    from pipeline_modules.drift.window import parse_window

    with tempfile.TemporaryDirectory(prefix="drift-bench-") as tmp:
        log = Path(tmp) / "requests.jsonl"
        write_s = write_log(log, reviews(args.requests, seed=2))
        stats = args.statistics or str(training_statistics(Path(tmp) / "statistics", args.training_reviews))
        window = parse_window("last 24h")
        runs, scan_s, stats_s = [], [], []
        for repeat in range(args.repeats):
            started = time.perf_counter()
            scan = scan_request_log([log], "bert_imdb", window)
            _, columns = select_version(scan)
            scan_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            serving_statistics(columns)
            stats_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            result = run_drift_report(
                request_log=[log],
                output_dir=Path(tmp) / f"report{repeat}",
                window=window,
                model_name="bert_imdb",
                statistics=stats,
            )
            runs.append(time.perf_counter() - started)
        records, log_bytes = result.summary["log"]["records"], log.stat().st_size
        started = time.perf_counter()  # the command as cron would run it: a fresh interpreter, imports included
        command = [sys.executable, "-m", "pipeline_modules.drift", "--request-log", str(log), "--since", "last 24h"]
        command += ["--statistics", stats, "--output-dir", str(Path(tmp) / "cli")]
        subprocess.run(command, check=True, capture_output=True)
        cli_s = time.perf_counter() - started
    payload = {
        "settings": {
            "requests": args.requests,
            "baseline": args.statistics or f"synthetic ({args.training_reviews} reviews)",
            "repeats": args.repeats,
        },
        "records_in_report": records,
        "report_wall_s_median": round(statistics.median(runs), 3),
        "report_wall_s_best": round(min(runs), 3),
        "read_log_s_median": round(statistics.median(scan_s), 3),
        "serving_statistics_s_median": round(statistics.median(stats_s), 3),
        "cli_wall_s": round(cli_s, 3),
        "log_write_s": round(write_s, 3),
        "log_bytes": log_bytes,
        "report_wall_s": [round(r, 3) for r in runs],
    }
    path = write_result("drift-report", payload, args.output)
    print()
    print_table(
        ["requests", "report s (median)", "best s", "read log s", "TFDV stats s", "command s", "RequestLog write s"],
        [
            [
                records,
                payload["report_wall_s_median"],
                payload["report_wall_s_best"],
                payload["read_log_s_median"],
                payload["serving_statistics_s_median"],
                payload["cli_wall_s"],
                payload["log_write_s"],
            ]
        ],
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
