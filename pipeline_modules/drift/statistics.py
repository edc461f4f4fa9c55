"""TFDV statistics of logged traffic, the training statistics to hold them against, and the schema that compares.

The serving side is computed in memory (``tfdv.generate_statistics_from_dataframe``, no Beam job) the way
StatisticsGen computed the training side: without a schema, so each feature gets the same kind of statistics on both
sides. Each compared feature's comparator follows that kind: L-infinity distance for categorical statistics (the
length bucket), approximate Jensen-Shannon divergence for numeric ones (the word count; the label, which
StatisticsGen summarises as a number). The review text is validated (presence, type) but not compared: its only
distribution TFDV keeps is the top-20 values of texts that are all different, and on the demo model's eval reviews
an L-infinity comparator on it reported skew (0.46) for an unshifted stream.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from pipeline_modules import features
from pipeline_modules.drift.request_log import Columns

MONITORED_FEATURES = (features.REVIEW_KEY, features.WORD_COUNT_KEY, features.LENGTH_BUCKET_KEY, features.LABEL_KEY)
COMPARED_FEATURES = (features.WORD_COUNT_KEY, features.LENGTH_BUCKET_KEY, features.LABEL_KEY)
FREE_TEXT_FEATURES = (features.REVIEW_KEY,)  # user text: never copied out of the log, even masked
STATS_FILE = "FeatureStats.pb"  # StatisticsGen's file per split (TFX >= 1.3); older runs wrote stats_tfrecord


class StatisticsError(ValueError):
    """Training statistics or a schema that cannot be read or lack what the report compares."""


def load_training_statistics(location: str, split: str = "train") -> Any:
    """A DatasetFeatureStatisticsList from a StatisticsGen artifact folder (its ``Split-<split>``), a split folder,
    a FeatureStats.pb / stats_tfrecord file, or a text proto (.pbtxt)."""
    import tensorflow_data_validation as tfdv
    from tensorflow.io import gfile

    candidates = [location]
    if gfile.isdir(location):
        base = (
            os.path.join(location, f"Split-{split}")
            if gfile.isdir(os.path.join(location, f"Split-{split}"))
            else location
        )
        candidates = [os.path.join(base, STATS_FILE), os.path.join(base, "stats_tfrecord")]
        if not any(gfile.exists(c) for c in candidates):
            splits = sorted(d.rstrip("/") for d in gfile.listdir(location) if d.startswith("Split-"))
            hint = f"; it has {', '.join(splits)}" if splits else ""
            raise StatisticsError(f"no statistics for split {split!r} in {location}{hint}")
    path = next((c for c in candidates if gfile.exists(c)), None)
    if path is None:
        raise StatisticsError(f"training statistics not found: {location}")
    try:
        if path.endswith((".pbtxt", ".txt")):
            stats = tfdv.load_stats_text(path)
        elif path.endswith("stats_tfrecord"):
            stats = tfdv.load_statistics(path)
        else:
            stats = tfdv.load_stats_binary(path)
    except Exception as error:  # noqa: BLE001 - protobuf and TF raise many types for a bad file
        raise StatisticsError(f"cannot read training statistics {path}: {error}") from error
    if len(stats.datasets) != 1:
        raise StatisticsError(f"{path} holds {len(stats.datasets)} datasets; expected one split's statistics")
    names = {f.path.step[0] if f.path.step else f.name for f in stats.datasets[0].features}
    if not names & set(MONITORED_FEATURES):
        raise StatisticsError(f"{path} has none of the monitored features {', '.join(MONITORED_FEATURES)}")
    return stats


def load_schema(path: str) -> Any:
    import tensorflow_data_validation as tfdv
    from tensorflow.io import gfile

    if gfile.isdir(path):
        path = os.path.join(path, "schema.pbtxt")  # a Schema artifact folder
    if not gfile.exists(path):
        raise StatisticsError(f"schema not found: {path}")
    try:
        return tfdv.load_schema_text(path)
    except Exception as error:  # noqa: BLE001
        raise StatisticsError(f"cannot read schema {path}: {error}") from error


def _feature_stats(stats: Any) -> dict[str, Any]:
    return {(f.path.step[0] if f.path.step else f.name): f for f in stats.datasets[0].features}


def only_monitored(stats: Any) -> Any:
    """The statistics of the monitored features only (a training-only column such as ``rating`` is no anomaly)."""
    kept = copy.deepcopy(stats)
    dataset = kept.datasets[0]
    wanted = [f for f in dataset.features if (f.path.step[0] if f.path.step else f.name) in MONITORED_FEATURES]
    del dataset.features[:]
    dataset.features.extend(wanted)
    return kept


def monitoring_schema(schema: Any, training: Any, linf_threshold: float, js_threshold: float) -> Any:
    """The training schema narrowed to the monitored features, for serving data (the log carries the derived
    training features too, so environments are dropped), with a drift and a skew comparator on each compared one."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    trained = _feature_stats(training)
    monitored = schema_pb2.Schema()
    monitored.CopyFrom(schema)
    del monitored.feature[:]
    del monitored.default_environment[:]
    for feature in schema.feature:
        if feature.name not in MONITORED_FEATURES or feature.name not in trained:
            continue
        kept = monitored.feature.add()
        kept.CopyFrom(feature)
        del kept.not_in_environment[:]
        del kept.in_environment[:]
        kept.ClearField("skew_comparator")
        kept.ClearField("drift_comparator")
        if feature.name not in COMPARED_FEATURES:
            continue
        for comparator in (kept.skew_comparator, kept.drift_comparator):
            if trained[feature.name].HasField("string_stats"):
                comparator.infinity_norm.threshold = linf_threshold
            else:
                comparator.jensen_shannon_divergence.threshold = js_threshold
    if not monitored.feature:
        raise StatisticsError(f"neither the schema nor the statistics have the features {MONITORED_FEATURES}")
    return monitored


def serving_statistics(columns: Columns) -> Any:
    """TFDV statistics of logged instances; a prediction-less instance has no label (missing, not a class)."""
    import pandas as pd
    import tensorflow_data_validation as tfdv

    data: dict[str, Any] = {
        features.REVIEW_KEY: pd.Series(columns.review, dtype=object),
        features.WORD_COUNT_KEY: pd.Series(columns.word_count, dtype="int64"),
        features.LENGTH_BUCKET_KEY: pd.Series(columns.length_bucket, dtype=object),
    }
    known = [v for v in columns.label if v is not None]
    if len(known) == len(columns.label):
        data[features.LABEL_KEY] = pd.Series(known, dtype="int64")
    elif known:  # nullable integers: Arrow gets int64 with nulls, TFDV counts them missing
        data[features.LABEL_KEY] = pd.Series(columns.label, dtype="Int64")
    return tfdv.generate_statistics_from_dataframe(pd.DataFrame(data))


def without_user_text(stats: Any) -> Any:
    """A copy of serving statistics safe to keep next to the report: free-text features lose their top values."""
    clean = copy.deepcopy(stats)
    for feature in clean.datasets[0].features:
        if (feature.path.step[0] if feature.path.step else feature.name) in FREE_TEXT_FEATURES:
            feature.string_stats.ClearField("top_values")
            feature.string_stats.ClearField("rank_histogram")
    return clean


def write_statistics(stats: Any, path: Path) -> None:
    path.write_bytes(stats.SerializeToString())
