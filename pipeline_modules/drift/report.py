"""Builds and writes the drift report: anomalies proto (text), summary (JSON and Markdown), plot, statistics.

The summary holds counts, shares and distances only; no review text, masked or not, appears in any file written
here (the serving statistics lose the review's top values, the anomalies its quoted value).
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import statistics as pystats
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline_modules import features
from pipeline_modules.drift.compare import Comparison
from pipeline_modules.drift.request_log import Columns, LogScan
from pipeline_modules.drift.statistics import without_user_text, write_statistics
from pipeline_modules.drift.window import iso

ANOMALIES_FILE = "anomalies.pbtxt"
SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
PLOT_FILE = "drift.png"
SERVING_STATS_FILE = "serving_stats.pb"
BUCKETS = [features.length_bucket(low) for low, _ in features.LENGTH_BUCKETS]


@dataclasses.dataclass(frozen=True)
class Baseline:
    """Where the training side came from (for the reader of the report)."""

    statistics_uri: str
    schema_uri: str
    split: str


def _feature(stats: Any, name: str) -> Any | None:
    return next((f for f in stats.datasets[0].features if (f.path.step[0] if f.path.step else f.name) == name), None)


def training_bucket_shares(training: Any) -> dict[str, float]:
    feature = _feature(training, features.LENGTH_BUCKET_KEY)
    if feature is None:
        return {}
    counts = {v.value: v.frequency for v in feature.string_stats.top_values}
    total = sum(counts.values()) or 1.0
    return {b: counts.get(b, 0.0) / total for b in BUCKETS}


def training_positive_share(training: Any) -> float | None:
    feature = _feature(training, features.LABEL_KEY)
    if feature is None:
        return None
    if feature.HasField("num_stats"):
        return float(feature.num_stats.mean)  # labels are 0 / 1
    counts = {v.value: v.frequency for v in feature.string_stats.top_values}
    return counts.get("1", 0.0) / (sum(counts.values()) or 1.0)


def training_word_count_histogram(training: Any) -> list[tuple[float, float, float]]:
    """(low, high, share) of StatisticsGen's standard histogram of word_count."""
    feature = _feature(training, features.WORD_COUNT_KEY)
    if feature is None:
        return []
    standard = next((h for h in feature.num_stats.histograms if h.type == 0), None)
    if standard is None:
        return []
    total = sum(b.sample_count for b in standard.buckets) or 1.0
    return [(b.low_value, b.high_value, b.sample_count / total) for b in standard.buckets]


def word_count_histogram(training: Any, counts: list[int]) -> list[dict[str, float]]:
    """Training's standard histogram of word_count with the window's share in each of its buckets; words beyond
    the training range count in the nearest end bucket, so the shares of each side sum to one."""
    buckets = training_word_count_histogram(training)
    if not buckets:
        return []
    serving = [0] * len(buckets)
    highs = [high for _, high, _ in buckets]
    for count in counts:
        serving[min(bisect.bisect_left(highs, count), len(buckets) - 1)] += 1
    total = len(counts) or 1
    return [
        {"low": low, "high": high, "training": share, "serving": n / total}
        for (low, high, share), n in zip(buckets, serving, strict=True)
    ]


def _shares(values: list[str]) -> dict[str, float]:
    counts = Counter(values)
    return {b: counts.get(b, 0) / (len(values) or 1) for b in BUCKETS}


def build_summary(
    *,
    scan: LogScan,
    version: int,
    current: Columns,
    previous: Columns | None,
    comparison: Comparison,
    training: Any,
    baseline: Baseline,
    log_files: list[str],
) -> dict[str, Any]:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    labels = [v for v in current.label if v is not None]
    probabilities = [p for p in current.probability if p is not None]
    previous_window = scan.window.previous() if previous is not None else None
    anomalies = comparison.anomalies
    listed = [
        {"feature": name, "short_description": info.short_description, "description": info.description}
        for name, info in sorted(anomalies.anomaly_info.items())
    ]
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        listed.append(
            {"feature": "(dataset)", "short_description": info.short_description, "description": info.description}
        )
    return {
        "model": scan.model_name,
        "version": version,
        "window": {
            "since": None if scan.window.since is None else iso(scan.window.since),
            "until": iso(scan.window.until),
        },
        "previous_window": None
        if previous_window is None or previous_window.since is None
        else {"since": iso(previous_window.since), "until": iso(previous_window.until)},
        "baseline": dataclasses.asdict(baseline),
        "log": {
            "files": log_files,
            "lines": scan.lines,
            "records": len(current),
            "previous_records": 0 if previous is None else len(previous),
            "unreadable": scan.corrupt_total,
            "unreadable_reasons": dict(scan.corrupt),
            "unreadable_examples": scan.corrupt_examples,
            "outside_window": scan.outside_window,
            "other_models": dict(scan.other_models),
            "other_versions": {str(v): n for v, n in scan.versions().items() if v != version},
            "without_prediction": scan.without_prediction,
        },
        "features": {
            name: {**dataclasses.asdict(m), "skewed": m.skewed, "drifted": m.drifted}
            for name, m in sorted(comparison.measurements.items())
        },
        "predictions": {
            "positive_share": sum(labels) / len(labels) if labels else None,
            "training_positive_share": training_positive_share(training),
            "mean_probability": sum(probabilities) / len(probabilities) if probabilities else None,
        },
        "length_buckets": {"serving": _shares(current.length_bucket), "training": training_bucket_shares(training)},
        "word_count": {
            "serving_median": pystats.median(current.word_count) if len(current) else None,
            "serving_mean": pystats.fmean(current.word_count) if len(current) else None,
            "training_mean": _training_mean(training),
            "histogram": word_count_histogram(training, current.word_count),
        },
        "review_length_chars": {
            "serving_mean": pystats.fmean(len(r) for r in current.review) if len(current) else None,
            "training_mean": _training_avg_length(training),
        },
        "anomalies": listed,
        "anomaly_reasons": sorted(
            {anomalies_pb2.AnomalyInfo.Type.Name(r.type) for i in anomalies.anomaly_info.values() for r in i.reason}
        ),
        "drift_detected": comparison.anomaly_count > 0,
    }


def _training_avg_length(training: Any) -> float | None:
    feature = _feature(training, features.REVIEW_KEY)
    return None if feature is None else float(feature.string_stats.avg_length)


def _training_mean(training: Any) -> float | None:
    feature = _feature(training, features.WORD_COUNT_KEY)
    return None if feature is None else float(feature.num_stats.mean)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def markdown(summary: dict[str, Any]) -> str:
    log, window, wc = summary["log"], summary["window"], summary["word_count"]
    verdict = "**drift or skew detected**" if summary["drift_detected"] else "no drift or skew above the thresholds"
    lines = [
        f"# Drift report: {summary['model']} version {summary['version']}",
        "",
        f"Window {window['since'] or 'start of log'} to {window['until']}: {log['records']} requests, {verdict}.",
        f"Baseline: `{summary['baseline']['statistics_uri']}` (split {summary['baseline']['split']}).",
        "",
        "| feature | comparator | threshold | training vs window (skew) | previous window vs window (drift) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, m in summary["features"].items():
        skew = _fmt(m["skew"]) + (" ⚠" if m["skewed"] else "")
        drift = _fmt(m["drift"]) + (" ⚠" if m["drifted"] else "")
        lines.append(f"| {name} | {m['comparator']} | {m['threshold']:g} | {skew} | {drift} |")
    p = summary["predictions"]
    lines += [
        "",
        f"Predicted positive: {_fmt(p['positive_share'])} (training labels: {_fmt(p['training_positive_share'])}); "
        f"mean probability {_fmt(p['mean_probability'])}.",
        "Word count: mean {}, median {} (training mean {}).".format(
            _fmt(wc["serving_mean"], 1), _fmt(wc["serving_median"], 0), _fmt(wc["training_mean"], 1)
        ),
        "Review length: mean {} characters (training {}).".format(
            _fmt(summary["review_length_chars"]["serving_mean"], 0),
            _fmt(summary["review_length_chars"]["training_mean"], 0),
        ),
        f"Log: {log['lines']} lines, {log['previous_records']} requests in the previous window, "
        f"{log['outside_window']} outside, {log['unreadable']} unreadable, "
        f"{log['without_prediction']} without a prediction.",
    ]
    if log["unreadable"]:
        lines.append(
            "Unreadable lines: " + "; ".join(log["unreadable_examples"]) + ("; …" if log["unreadable"] > 5 else "")
        )
    if summary["anomalies"]:
        lines += ["", "## Anomalies", ""]
        lines += [f"- `{a['feature']}`: {a['short_description']}. {a['description']}" for a in summary["anomalies"]]
    return "\n".join(lines) + "\n"


def write_report(
    output_dir: Path, summary: dict[str, Any], comparison: Comparison, serving: Any, plot: bool = True
) -> dict[str, Path]:
    """Writes every file of the report; returns them by kind."""
    from google.protobuf import text_format

    output_dir.mkdir(parents=True, exist_ok=True)
    written = {
        "anomalies": output_dir / ANOMALIES_FILE,
        "summary_json": output_dir / SUMMARY_JSON,
        "summary_md": output_dir / SUMMARY_MD,
        "serving_statistics": output_dir / SERVING_STATS_FILE,
    }
    written["anomalies"].write_text(text_format.MessageToString(comparison.anomalies), encoding="utf-8")
    written["summary_json"].write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    written["summary_md"].write_text(markdown(summary), encoding="utf-8")
    write_statistics(without_user_text(serving), written["serving_statistics"])
    if plot:
        from pipeline_modules.drift.plot import plot_report

        written["plot"] = output_dir / PLOT_FILE
        plot_report(summary, written["plot"])
    return written
