"""`DriftReport`: the drift report as a TFX component, for a pipeline that checks live traffic on a schedule.

It takes StatisticsGen's and ImportSchemaGen's artifacts (the training side) and a request-log location, and writes
an ExampleAnomalies artifact: ``Split-serving/SchemaDiff.pb`` (the anomalies, where TFX tools look for them) plus the
report's summary, plot and sanitised serving statistics at the artifact's root. Drift is an output
(``drift_detected``), not a failure, unless ``fail_on_drift``. (No ``from __future__ import annotations``: TFX reads
the signature's annotations as types.)
"""

import glob
import os
from pathlib import Path
from typing import TypedDict

from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import ExampleAnomalies, ExampleStatistics, Schema

from pipeline_modules.drift.cli import DriftResult, run_drift_report
from pipeline_modules.drift.window import parse_window

SERVING_SPLIT = "serving"


class DriftDetectedError(RuntimeError):
    """The report found anomalies and the component was asked to fail on them."""


class DriftOutputs(TypedDict):
    drift_detected: int
    records: int


def log_files(location: str) -> list[str]:
    """A file, a glob ("requests.jsonl*", for rotated logs), or a folder of ``*.jsonl*`` files."""
    if os.path.isdir(location):
        found = glob.glob(os.path.join(location, "*.jsonl*"))  # requests.jsonl, logrotate's .jsonl.1, .jsonl.2.gz
    elif any(c in location for c in "*?["):
        found = glob.glob(location)
    else:
        return [location]
    return sorted(found) if found else [location]  # order does not matter: lines are picked by their time


def execute(
    *,
    statistics_uri: str,
    schema_uri: str,
    output_uri: str,
    request_log_path: str,
    since: str,
    until: str,
    model_name: str,
    model_version: int,
    split: str,
    linf_threshold: float,
    js_threshold: float,
) -> DriftResult:
    """The component's work, callable without an orchestrator."""
    result = run_drift_report(
        request_log=log_files(request_log_path),
        output_dir=output_uri,
        window=parse_window(since, until),
        model_name=model_name,
        model_version=model_version,
        statistics=statistics_uri,
        schema=schema_uri,
        split=split,
        linf_threshold=linf_threshold,
        js_threshold=js_threshold,
    )
    split_dir = Path(output_uri) / f"Split-{SERVING_SPLIT}"
    split_dir.mkdir(parents=True, exist_ok=True)
    (split_dir / "SchemaDiff.pb").write_bytes(result.comparison.anomalies.SerializeToString())
    return result


@tfx.dsl.components.component  # type: ignore[misc,untyped-decorator]
def DriftReport(  # noqa: N802 - TFX component names are classes
    statistics: tfx.dsl.components.InputArtifact[ExampleStatistics],
    schema: tfx.dsl.components.InputArtifact[Schema],
    drift_report: tfx.dsl.components.OutputArtifact[ExampleAnomalies],
    request_log_path: tfx.dsl.components.Parameter[str],
    since: tfx.dsl.components.Parameter[str] = "last 24h",
    until: tfx.dsl.components.Parameter[str] = "",
    model_name: tfx.dsl.components.Parameter[str] = "bert_imdb",
    model_version: tfx.dsl.components.Parameter[int] = 0,
    split: tfx.dsl.components.Parameter[str] = "train",
    linf_threshold: tfx.dsl.components.Parameter[float] = 0.1,
    js_threshold: tfx.dsl.components.Parameter[float] = 0.1,
    fail_on_drift: tfx.dsl.components.Parameter[bool] = False,
) -> DriftOutputs:
    """Compares the request log's window with the training statistics; see the module docstring."""
    result = execute(
        statistics_uri=statistics.uri,
        schema_uri=schema.uri,
        output_uri=drift_report.uri,
        request_log_path=request_log_path,
        since=since,
        until=until,
        model_name=model_name,
        model_version=model_version,
        split=split,
        linf_threshold=linf_threshold,
        js_threshold=js_threshold,
    )
    drift_report.split_names = artifact_utils.encode_split_names([SERVING_SPLIT])
    if fail_on_drift and result.drift_detected:
        anomalies = ", ".join(a["feature"] for a in result.summary["anomalies"])
        raise DriftDetectedError(f"drift or skew in {anomalies}; see {drift_report.uri}/summary.md")
    return {"drift_detected": int(result.drift_detected), "records": int(result.summary["log"]["records"])}
