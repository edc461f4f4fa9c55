"""Holds serving statistics against training (skew) and against the previous window (drift) with TFDV.

Two ``tfdv.validate_statistics`` calls, one anomalies proto: the skew call (training statistics, serving
statistics) contributes only its comparator findings, since training data was validated when the pipeline ran; the
drift call validates the window's statistics against the schema and, when the previous window logged requests,
compares the two. TFDV quotes values in its messages ("the feature value with maximum difference is: ...", "values
missing from the schema: ..."); for the review text those would be users' (masked) reviews, so they are withheld
(the review has no comparator here, but a schema given with --schema may give it a domain).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from pipeline_modules.drift.statistics import FREE_TEXT_FEATURES, monitoring_schema, only_monitored

WITHHELD = "[withheld: user text]"
_QUOTED_VALUE = re.compile(r"(The feature value with maximum difference is: ).*", re.DOTALL)


@dataclasses.dataclass(frozen=True)
class Measurement:
    comparator: str  # TFDV's DriftSkewInfo.Measurement type: L_INFTY, JENSEN_SHANNON_DIVERGENCE
    threshold: float
    skew: float | None  # training vs this window
    drift: float | None  # previous window vs this window (None: no previous window)

    @property
    def skewed(self) -> bool:
        return self.skew is not None and self.skew > self.threshold

    @property
    def drifted(self) -> bool:
        return self.drift is not None and self.drift > self.threshold


@dataclasses.dataclass
class Comparison:
    anomalies: Any  # tensorflow_metadata Anomalies
    measurements: dict[str, Measurement]
    schema: Any  # the monitoring schema, with its comparators

    @property
    def anomaly_count(self) -> int:
        return len(self.anomalies.anomaly_info) + int(self.anomalies.HasField("dataset_anomaly_info"))


def _name(path: Any) -> str:
    return ".".join(path.step)


def _is_comparator(reason: Any) -> bool:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    return anomalies_pb2.AnomalyInfo.Type.Name(reason.type).startswith("COMPARATOR_")


def _merge_skew(into: Any, skew: Any) -> None:
    for feature, info in skew.anomaly_info.items():
        reasons = [r for r in info.reason if _is_comparator(r)]
        if not reasons:
            continue
        target = into.anomaly_info[feature]
        if not target.reason:
            target.path.CopyFrom(info.path)
            target.severity = info.severity
            target.short_description = info.short_description
        else:
            target.short_description = "Multiple errors"
        target.reason.extend(reasons)
        target.description = " ".join(r.description for r in target.reason)
    by_path = {_name(d.path): d for d in into.drift_skew_info}
    for info in skew.drift_skew_info:
        if _name(info.path) in by_path:
            by_path[_name(info.path)].skew_measurements.extend(info.skew_measurements)
        else:
            into.drift_skew_info.add().CopyFrom(info)


def _withhold_user_text(anomalies: Any) -> None:
    for feature in FREE_TEXT_FEATURES:
        if feature not in anomalies.anomaly_info:
            continue
        info = anomalies.anomaly_info[feature]
        for reason in info.reason:
            if _is_comparator(reason):
                reason.description = _QUOTED_VALUE.sub(rf"\g<1>{WITHHELD}", reason.description)
            else:  # e.g. "Examples contain values missing from the schema: <texts>"
                reason.description = f"{reason.short_description} (details {WITHHELD})"
        info.description = " ".join(r.description for r in info.reason) if info.reason else ""


def _measurements(anomalies: Any, schema: Any) -> dict[str, Measurement]:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    kind = anomalies_pb2.DriftSkewInfo.Measurement.Type.Name
    thresholds = {}
    for feature in schema.feature:
        comparator = feature.skew_comparator
        if comparator.HasField("infinity_norm"):
            thresholds[feature.name] = ("L_INFTY", comparator.infinity_norm.threshold)
        elif comparator.HasField("jensen_shannon_divergence"):
            thresholds[feature.name] = ("JENSEN_SHANNON_DIVERGENCE", comparator.jensen_shannon_divergence.threshold)
    found: dict[str, Measurement] = {}
    for info in anomalies.drift_skew_info:
        name = _name(info.path)
        if name not in thresholds:
            continue
        comparator, threshold = thresholds[name]
        skew = next((m.value for m in info.skew_measurements if kind(m.type) == comparator), None)
        drift = next((m.value for m in info.drift_measurements if kind(m.type) == comparator), None)
        found[name] = Measurement(comparator, threshold, skew, drift)
    return found


def compare(
    training: Any, schema: Any, serving: Any, previous: Any | None, *, linf_threshold: float, js_threshold: float
) -> Comparison:
    import tensorflow_data_validation as tfdv

    baseline = only_monitored(training)
    monitored = monitoring_schema(schema, baseline, linf_threshold, js_threshold)
    skew = tfdv.validate_statistics(baseline, monitored, serving_statistics=serving)
    anomalies = tfdv.validate_statistics(serving, monitored, previous_statistics=previous)
    _merge_skew(anomalies, skew)
    _withhold_user_text(anomalies)
    return Comparison(anomalies=anomalies, measurements=_measurements(anomalies, monitored), schema=monitored)
