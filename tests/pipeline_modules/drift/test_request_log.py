"""Reading the request log: time windows, unreadable lines (counted, not fatal), and clear errors."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pytest

from pipeline_modules.drift.request_log import RequestLogError, scan_request_log, select_version
from pipeline_modules.drift.window import parse_time, parse_window
from tests.pipeline_modules.drift.drift_helpers import write_log

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)


def test_windows_from_iso_times_and_last() -> None:
    window = parse_window("last 24h", "2026-12-01T12:00:00Z")
    assert window.since == NOW - dt.timedelta(hours=24) and window.until == NOW
    assert parse_window("last 90m", now=NOW).since == NOW - dt.timedelta(minutes=90)
    assert parse_window("2026-11-30", "2026-12-01T13:00:00+01:00").until == NOW  # offsets become UTC
    assert parse_window("", now=NOW).since is None and parse_window("", now=NOW).previous() is None
    previous = window.previous()
    assert previous is not None and (previous.since, previous.until) == (NOW - dt.timedelta(hours=48), window.since)
    assert window.contains(window.since) and not window.contains(NOW)  # [since, until)
    for bad in ("yesterday", "last 24 parsecs", "last 0h"):
        with pytest.raises(ValueError, match="since|ISO"):
            parse_window(bad, now=NOW)
    with pytest.raises(ValueError, match="empty"):
        parse_window("2026-12-02T00:00:00Z", "2026-12-01T00:00:00Z")
    assert parse_time("2026-12-01T12:00:00.123Z").microsecond == 123000


def test_log_written_by_the_server_gives_the_training_features(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    write_log(log, ["Great film.<br /><br />Mail me at me@example.com", "a " * 200], positive_share=1.0)
    [first, second] = [json.loads(line) for line in log.read_text().splitlines()]
    assert "me@example.com" not in first["review"] and "[EMAIL]" in first["review"]  # the server masked it
    scan = scan_request_log([log], "bert_imdb", parse_window("last 1h"))
    version, columns = select_version(scan)
    assert version == 1 and len(columns) == 2
    assert columns.word_count == [6, 200]  # "<br />" is markup, not a word (ExampleGen's rule)
    assert columns.length_bucket == ["0000-0127", "0128-0255"]
    assert columns.label == [1, 1] and all(p is not None and p >= 0.5 for p in columns.probability)


def test_unreadable_lines_are_counted_with_their_place_not_fatal(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    good = {"ts": "2026-12-01T11:00:00.000Z", "model": "bert_imdb", "version": 3, "review": "fine", "label": "negative"}
    lines = [
        json.dumps(good).encode(),
        b'{"ts": "2026-12-01T11:00:01.000Z", "model": "bert_imdb", "rev',  # a crash mid-line
        b"\xff\xfe not utf-8",
        b"[1, 2]",
        json.dumps({**good, "ts": "noon"}).encode(),
        json.dumps({**good, "version": "3"}).encode(),
        json.dumps({**good, "review": None}).encode(),
        json.dumps({**good, "label": None, "probability": None}).encode(),  # no prediction: kept, label missing
        json.dumps({**good, "model": "other"}).encode(),
        json.dumps({**good, "ts": "2026-11-01T00:00:00Z"}).encode(),
        b"",
    ]
    log.write_bytes(b"\n".join(lines) + b"\n")
    scan = scan_request_log([log], "bert_imdb", parse_window("last 24h", "2026-12-01T12:00:00Z"))
    assert scan.lines == 10 and scan.corrupt_total == 6
    assert scan.corrupt == {
        "not JSON (a truncated line?)": 1,
        "not UTF-8": 1,
        "not a JSON object": 1,
        "no valid 'ts'": 1,
        "no integer 'version'": 1,
        "no 'review' text": 1,
    }
    assert scan.corrupt_examples[0] == "requests.jsonl:2: not JSON (a truncated line?)"
    assert (scan.other_models, scan.outside_window, scan.without_prediction) == ({"other": 1}, 1, 1)
    _, columns = select_version(scan)
    assert columns.label == [0, None]


def test_gzip_rotated_logs_and_versions(tmp_path: Path) -> None:
    record = {"ts": "2026-12-01T11:00:00Z", "model": "m", "review": "x", "probability": 0.9}
    with gzip.open(tmp_path / "requests.jsonl.1.gz", "wt") as handle:
        handle.write(json.dumps({**record, "version": 1}) + "\n")
    (tmp_path / "requests.jsonl").write_text(json.dumps({**record, "version": 2}) + "\n")
    paths = [tmp_path / "requests.jsonl.1.gz", tmp_path / "requests.jsonl"]
    scan = scan_request_log(paths, "m", parse_window("last 24h", "2026-12-01T12:00:00Z"))
    assert scan.versions() == {1: 1, 2: 1}
    assert select_version(scan)[0] == 2  # the newest logged version by default
    assert select_version(scan, 1)[1].label == [1]  # from the probability when the label is not logged
    classify = {**record, "version": 3, "probability": None, "classes": ["positive", "negative"], "scores": [0.2, 0.8]}
    (tmp_path / "classify.jsonl").write_text(json.dumps(classify) + "\n")
    classified = scan_request_log([tmp_path / "classify.jsonl"], "m", parse_window("last 24h", "2026-12-01T12:00:00Z"))
    columns = select_version(classified)[1]
    assert (columns.label, columns.probability) == ([0], [0.2])  # a Classify response: the top class
    with pytest.raises(RequestLogError, match=r"version 7 .*logged versions: \{1: 1, 2: 1\}"):
        select_version(scan, 7)


def test_empty_log_missing_log_and_unknown_model_are_clear_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    window = parse_window("last 24h")
    with pytest.raises(RequestLogError, match=r"no logged request for model 'bert_imdb' .*0 lines read"):
        select_version(scan_request_log([empty], "bert_imdb", window))
    with pytest.raises(RequestLogError, match="request log not found: .*nowhere.jsonl"):
        scan_request_log([tmp_path / "nowhere.jsonl"], "bert_imdb", window)
    other = tmp_path / "other.jsonl"
    write_log(other, ["fine"], model="sentiment")
    with pytest.raises(RequestLogError, match=r"'bert_imdb'.*other models: \{'sentiment': 1\}"):
        select_version(scan_request_log([other], "bert_imdb", parse_window("last 24h")))
