"""The drift report end to end: a shifted stream is reported, an unshifted one is not, and no user text leaks."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2

from pipeline_modules.drift.cli import EXIT_DRIFT, EXIT_ERROR, main
from tests.pipeline_modules.drift.drift_helpers import (
    imdb_like_texts,
    short_texts,
    write_log,
    write_training_statistics,
)

MARKER = "zqxwvmarker"  # a word only user texts contain: must never reach a report file


@pytest.fixture(scope="module")
def training_stats(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_training_statistics(tmp_path_factory.mktemp("stats") / "statistics", imdb_like_texts(600, seed=11))


def _report(tmp_path: Path, name: str, *extra: str) -> tuple[int, dict, anomalies_pb2.Anomalies]:
    out = tmp_path / name
    rc = main(
        ["--request-log", str(tmp_path / f"{name}.jsonl"), "--output-dir", str(out), "--since", "last 1h", *extra]
    )
    if rc == EXIT_ERROR:
        return rc, {}, anomalies_pb2.Anomalies()
    summary = json.loads((out / "summary.json").read_text())
    anomalies = text_format.Parse((out / "anomalies.pbtxt").read_text(), anomalies_pb2.Anomalies())
    return rc, summary, anomalies


def test_unshifted_stream_reports_no_drift(tmp_path: Path, training_stats: Path) -> None:
    write_log(tmp_path / "same.jsonl", imdb_like_texts(400, seed=3))
    rc, summary, anomalies = _report(tmp_path, "same", "--statistics", str(training_stats), "--fail-on-drift")
    assert rc == 0 and not summary["drift_detected"] and not anomalies.anomaly_info
    assert summary["log"]["records"] == 400
    assert set(summary["features"]) == {"word_count", "length_bucket", "label"}  # review: validated, not compared
    assert all(m["skew"] is not None and m["skew"] < m["threshold"] for m in summary["features"].values())
    assert (tmp_path / "same" / "drift.png").stat().st_size > 10_000
    assert (tmp_path / "same" / "summary.md").read_text().startswith("# Drift report: bert_imdb version 1")


def test_short_texts_drift_is_reported_and_no_user_text_leaks(tmp_path: Path, training_stats: Path) -> None:
    texts = [f"{t} {MARKER} write me@example.com" for t in short_texts(300)]
    write_log(tmp_path / "short.jsonl", texts, positive_share=0.95)
    rc, summary, anomalies = _report(tmp_path, "short", "--statistics", str(training_stats))
    assert rc == 0 and summary["drift_detected"]  # reported, not an error
    features = summary["features"]
    assert features["word_count"]["skewed"] and features["length_bucket"]["skewed"] and features["label"]["skewed"]
    assert {"word_count", "length_bucket", "label"} <= set(anomalies.anomaly_info)
    assert summary["length_buckets"]["serving"]["0000-0127"] == 1.0
    assert summary["predictions"]["positive_share"] > 0.9
    for path in (tmp_path / "short").iterdir():
        content = path.read_bytes()
        assert MARKER.encode() not in content and b"example.com" not in content, path.name
    assert _report(tmp_path, "short", "--statistics", str(training_stats), "--fail-on-drift")[0] == EXIT_DRIFT
    # Looser thresholds from the command line (the configuration's drift_* fields) turn the verdict around.
    rc, summary, _ = _report(
        tmp_path, "short", "--statistics", str(training_stats), "--linf-threshold", "1", "--js-threshold", "1"
    )
    assert rc == 0 and not any(m["skewed"] for m in summary["features"].values())


def test_drift_against_the_previous_window(
    tmp_path: Path, training_stats: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    log = tmp_path / "shift.jsonl"
    write_log(log, imdb_like_texts(200, seed=4), at=now - dt.timedelta(minutes=90), monkeypatch=monkeypatch)
    write_log(log, short_texts(200), at=now - dt.timedelta(minutes=10), monkeypatch=monkeypatch)
    rc, summary, anomalies = _report(tmp_path, "shift", "--statistics", str(training_stats))
    assert rc == 0 and summary["log"]["records"] == 200 and summary["log"]["previous_records"] == 200
    assert summary["features"]["word_count"]["drifted"] and summary["features"]["length_bucket"]["drifted"]
    descriptions = anomalies.anomaly_info["length_bucket"].description
    assert "between current and previous" in descriptions and "between training and serving" in descriptions
    rc, summary, _ = _report(tmp_path, "shift", "--statistics", str(training_stats), "--no-previous-window")
    assert summary["previous_window"] is None and summary["features"]["word_count"]["drift"] is None


def test_unreadable_lines_are_reported_not_fatal(tmp_path: Path, training_stats: Path) -> None:
    log = tmp_path / "torn.jsonl"
    write_log(log, imdb_like_texts(50, seed=6))
    with log.open("ab") as handle:
        handle.write(b'{"ts": "2026-12-01T11:00:00Z", "model": "bert_im\n\xff\n')
    rc, summary, _ = _report(tmp_path, "torn", "--statistics", str(training_stats), "--no-plot")
    assert rc == 0 and summary["log"]["records"] == 50 and summary["log"]["unreadable"] == 2
    assert summary["log"]["unreadable_examples"] == [
        "torn.jsonl:51: not JSON (a truncated line?)",
        "torn.jsonl:52: not UTF-8",
    ]
    assert not (tmp_path / "torn" / "drift.png").exists()


def test_bad_inputs_are_clear_errors(tmp_path: Path, training_stats: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    assert _report(tmp_path, "empty", "--statistics", str(training_stats))[0] == EXIT_ERROR
    assert "no logged request for model 'bert_imdb'" in capsys.readouterr().err
    write_log(tmp_path / "ok.jsonl", ["a fine film"])
    assert _report(tmp_path, "ok", "--statistics", str(tmp_path / "missing"))[0] == EXIT_ERROR
    assert "training statistics not found" in capsys.readouterr().err
    assert _report(tmp_path, "ok", "--statistics", str(training_stats), "--split", "eval")[0] == EXIT_ERROR
    err = capsys.readouterr().err
    assert "no statistics for split 'eval'" in err and "Split-train" in err
    assert _report(tmp_path, "ok", "--statistics", str(training_stats), "--model-name", "nope")[0] == EXIT_ERROR
    assert "no logged request for model 'nope'" in capsys.readouterr().err
    assert _report(tmp_path, "ok", "--pipeline-root", str(tmp_path / "no_pipeline"))[0] == EXIT_ERROR
    assert "no ML Metadata at" in capsys.readouterr().err
    assert _report(tmp_path, "ok", "--statistics", str(training_stats), "--linf-threshold", "0")[0] == EXIT_ERROR
    assert "drift_linf_threshold must be within (0, 1]" in capsys.readouterr().err


def test_values_tfdv_would_quote_from_user_text_are_withheld(tmp_path: Path, training_stats: Path) -> None:
    """A schema given with --schema may give the review a domain; TFDV then quotes the unexpected texts."""
    from pipeline_modules.drift.cli import CURATED_SCHEMA

    schema = (
        Path(CURATED_SCHEMA)
        .read_text()
        .replace(
            'name: "review"\n  type: BYTES', 'name: "review"\n  type: BYTES\n  string_domain { value: "only this" }'
        )
    )
    (tmp_path / "schema.pbtxt").write_text(schema)
    write_log(tmp_path / "domain.jsonl", [f"{MARKER} text {i}" for i in range(30)])
    rc, summary, anomalies = _report(
        tmp_path, "domain", "--statistics", str(training_stats), "--schema", str(tmp_path / "schema.pbtxt")
    )
    assert rc == 0 and "review" in anomalies.anomaly_info
    assert "[withheld: user text]" in anomalies.anomaly_info["review"].description
    for path in (tmp_path / "domain").iterdir():
        assert MARKER.encode() not in path.read_bytes(), path.name
