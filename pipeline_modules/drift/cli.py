"""`bert-imdb-drift`: the drift and skew report of the model server's request log, from the command line.

Exit status: 0 when the report was written (drift is reported, not an error), 1 with ``--fail-on-drift`` when the
report found anomalies, 2 on an error (a missing log or statistics, no requests in the window, an unknown version).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline_modules.config import PRESETS, config_for
from pipeline_modules.drift.compare import Comparison, compare
from pipeline_modules.drift.lineage import LineageError, training_inputs
from pipeline_modules.drift.report import Baseline, build_summary, markdown, write_report
from pipeline_modules.drift.request_log import RequestLogError, scan_request_log, select_version
from pipeline_modules.drift.statistics import StatisticsError, load_schema, load_training_statistics, serving_statistics
from pipeline_modules.drift.window import TimeWindow, parse_window

CURATED_SCHEMA = str(Path(__file__).resolve().parent.parent / "schema" / "schema.pbtxt")
EXIT_DRIFT = 1
EXIT_ERROR = 2
DRIFT_ERRORS = (RequestLogError, StatisticsError, LineageError, ValueError)


@dataclasses.dataclass
class DriftResult:
    summary: dict[str, Any]
    comparison: Comparison
    files: dict[str, Path]

    @property
    def drift_detected(self) -> bool:
        return bool(self.summary["drift_detected"])


def run_drift_report(
    *,
    request_log: Sequence[str | Path],
    output_dir: str | Path,
    window: TimeWindow,
    model_name: str,
    model_version: int = 0,
    statistics: str = "",
    schema: str = "",
    metadata_path: str | Path = "",
    split: str = "train",
    linf_threshold: float = 0.1,
    js_threshold: float = 0.1,
    compare_previous_window: bool = True,
    plot: bool = True,
) -> DriftResult:
    """Reads the log, finds the baseline (``statistics`` or ML Metadata), compares, writes the report."""
    scan = scan_request_log(request_log, model_name, window, with_previous=compare_previous_window)
    version, current = select_version(scan, model_version)
    if statistics:
        statistics_uri, schema_uri = statistics, schema or CURATED_SCHEMA
    elif metadata_path:
        found = training_inputs(metadata_path, version, model_name)
        statistics_uri, schema_uri = found.statistics_uri, schema or found.schema_uri or CURATED_SCHEMA
    else:
        raise StatisticsError("give the training statistics (--statistics) or the ML Metadata to find them in")
    training = load_training_statistics(statistics_uri, split)
    serving = serving_statistics(current)
    previous_columns = scan.previous.get(version)
    previous = serving_statistics(previous_columns) if previous_columns else None
    comparison = compare(
        training, load_schema(schema_uri), serving, previous, linf_threshold=linf_threshold, js_threshold=js_threshold
    )
    summary = build_summary(
        scan=scan,
        version=version,
        current=current,
        previous=previous_columns,
        comparison=comparison,
        training=training,
        baseline=Baseline(statistics_uri=statistics_uri, schema_uri=schema_uri, split=split),
        log_files=[str(p) for p in request_log],
    )
    files = write_report(Path(output_dir), summary, comparison, serving, plot=plot)
    return DriftResult(summary=summary, comparison=comparison, files=files)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bert-imdb-drift",
        description="Compare the model server's request log with the training statistics of the served model "
        "(TFDV skew and drift comparators) and write a report.",
    )
    parser.add_argument(
        "--request-log",
        nargs="+",
        required=True,
        metavar="PATH",
        help="the server's --request_log_path file(s), oldest first; .gz files are read too",
    )
    parser.add_argument("--since", default=None, help="ISO time or 'last 24h' (default: the preset's drift_window)")
    parser.add_argument("--until", default="", help="ISO time (default: now)")
    parser.add_argument("--output-dir", default="drift_report", help="where the report goes (default %(default)s)")
    parser.add_argument(
        "--preset",
        default="demo",
        choices=sorted(PRESETS),
        help="whose pipeline root, model name and thresholds to use (default %(default)s)",
    )
    parser.add_argument("--pipeline-root", default=None, help="pipeline root holding metadata.sqlite")
    parser.add_argument(
        "--metadata-path", default=None, help="ML Metadata SQLite file (default <pipeline root>/metadata.sqlite)"
    )
    parser.add_argument("--model-name", default=None, help="the served model's name (default: the preset's)")
    parser.add_argument("--model-version", type=int, default=0, help="default: the newest version in the window")
    parser.add_argument(
        "--statistics",
        default="",
        help="training statistics (StatisticsGen artifact folder or "
        "FeatureStats.pb) instead of looking them up in ML Metadata",
    )
    parser.add_argument("--schema", default="", help="schema.pbtxt (default: the run's, else the curated one)")
    parser.add_argument("--split", default="train", help="split of the training statistics (default %(default)s)")
    parser.add_argument("--linf-threshold", type=float, default=None, help="default: drift_linf_threshold")
    parser.add_argument("--js-threshold", type=float, default=None, help="default: drift_js_threshold")
    parser.add_argument("--no-previous-window", action="store_true", help="skip drift against the previous window")
    parser.add_argument("--no-plot", action="store_true", help="write no PNG")
    parser.add_argument("--fail-on-drift", action="store_true", help=f"exit {EXIT_DRIFT} when anomalies are found")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    overrides = {
        k: v
        for k, v in {
            "pipeline_root": args.pipeline_root,
            "metadata_path": args.metadata_path,
            "model_name": args.model_name,
            "drift_linf_threshold": args.linf_threshold,
            "drift_js_threshold": args.js_threshold,
        }.items()
        if v is not None
    }
    try:
        config = config_for(args.preset, **overrides)
        result = run_drift_report(
            request_log=args.request_log,
            output_dir=args.output_dir,
            window=parse_window(config.drift_window if args.since is None else args.since, args.until),
            model_name=config.model_name,
            model_version=args.model_version,
            statistics=args.statistics,
            schema=args.schema,
            metadata_path="" if args.statistics else config.metadata_path_resolved,
            split=args.split,
            linf_threshold=config.drift_linf_threshold,
            js_threshold=config.drift_js_threshold,
            compare_previous_window=not args.no_previous_window,
            plot=not args.no_plot,
        )
    except DRIFT_ERRORS as error:
        print(f"bert-imdb-drift: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    print(markdown(result.summary), end="")
    print(f"Report: {', '.join(str(p) for p in result.files.values())}")
    if result.summary["log"]["unreadable"]:
        print(
            f"warning: {result.summary['log']['unreadable']} unreadable log line(s), see the summary", file=sys.stderr
        )
    return EXIT_DRIFT if args.fail_on_drift and result.drift_detected else 0


if __name__ == "__main__":
    sys.exit(main())
