"""``bert-imdb-score``: one error line and exit status 2 for a wrong file, format, column or model; the newest
version of a base path; the same output in-process, over REST and over gRPC."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from model_server.process import ServerProcess, start_server
from pipeline_modules.scoring.cli import main

CSV_TEXT = "id,review\n1,A wonderful film\n2,\n3,boring and awful\n4,the best of the year\n"


@pytest.fixture
def reviews_csv(tmp_path: Path) -> Path:
    path = tmp_path / "reviews.csv"
    path.write_text(CSV_TEXT, encoding="utf-8")
    return path


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bert-imdb-score: error: "), err
    return err[0]


def _error_cases(tmp_path: Path, reviews_csv: Path, model: str) -> list[tuple[list[str], str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "notes.txt").write_text("review\nhello\n")
    pq.write_table(pa.table({"text": ["hello"]}), tmp_path / "t.parquet")
    pq.write_table(pa.table({"review": [1, 2]}), tmp_path / "ints.parquet")
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("review,label\ngreat,1\n")
    (tmp_path / "empty_model").mkdir()
    return [
        ([str(tmp_path / "missing.csv"), "--model", model], "no input file"),
        ([str(tmp_path / "notes.txt"), "--model", model], "cannot tell the format"),
        ([str(reviews_csv), "--model", model, "--text-column", "text"], "has no column 'text'"),
        ([str(tmp_path / "t.parquet"), "--model", model], "has no column 'review'"),
        ([str(tmp_path / "ints.parquet"), "--model", model], "not a string column"),
        ([str(labelled), "--model", model], "already has a column 'label'"),
        ([str(reviews_csv), "--model", str(tmp_path / "no_such_model")], "no model at"),
        ([str(reviews_csv), "--model", str(tmp_path / "empty_model")], "no model at"),
        ([str(reviews_csv), "--model", model, "--signature-name", "nope"], "no signature 'nope'"),
        ([str(reviews_csv), "--model", model, "-o", str(tmp_path / "out.jsonl")], "names a jsonl file"),
    ]


def test_each_wrong_request_gets_one_error_line_and_exit_status_2(
    tmp_path: Path, reviews_csv: Path, toy_model_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv, expected in _error_cases(tmp_path, reviews_csv, toy_model_dir):
        before = sorted(p.name for p in tmp_path.iterdir())
        assert main(argv) == 2, argv
        assert expected in _one_error_line(capsys), argv
        assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_a_base_path_scores_with_its_newest_version(
    tmp_path: Path, reviews_csv: Path, toy_model_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.doubles.toy_model import publish_version

    base = tmp_path / "bert_imdb"
    publish_version(str(base), 7, source_dir=str(Path(toy_model_dir) / "1"))
    publish_version(str(base), 12, bias=20.0)  # every text positive: tells the versions apart
    (base / "99.tmp").mkdir()  # not a version
    assert main([str(reviews_csv), "--model", str(base), "-o", str(tmp_path / "out.csv")]) == 0
    rows = (tmp_path / "out.csv").read_text().splitlines()
    assert [row.rsplit(",", 1)[1] for row in rows[1:]] == ["positive"] * 3
    assert f"{base / '12'} (in-process" in capsys.readouterr().out  # the summary names the version it used


@pytest.fixture(scope="module")
def server(toy_model_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("served") / "toy"
    shutil.copytree(toy_model_dir, base)
    process = start_server(model_name="toy", model_base_path=str(base), extra_args=["--access_log_path="])
    try:
        process.wait_for_model("toy", timeout=180)
        yield process
    finally:
        process.stop()


def test_rest_grpc_and_in_process_write_the_same_files(
    tmp_path: Path, reviews_csv: Path, toy_model_dir: str, server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = {}
    for name, source in (
        ("model", ["--model", toy_model_dir]),
        ("rest", ["--rest", server.rest_url, "--model-name", "toy"]),
        ("grpc", ["--grpc", server.grpc_target, "--model-name", "toy"]),
    ):
        output = tmp_path / f"{name}.csv"
        assert main([str(reviews_csv), *source, "-o", str(output), "--batch-size", "2"]) == 0
        summary = capsys.readouterr().out
        assert "4 rows: 3 scored" in summary and "1 rejected (empty_text 1)" in summary
        outputs[name] = (output.read_bytes(), (tmp_path / f"{name}.rejects.jsonl").read_bytes())
    assert outputs["rest"] == outputs["model"] == outputs["grpc"]
    assert json.loads(outputs["model"][1]) == {
        "row": 2, "reason": "empty_text", "message": "the text is empty or only whitespace",
    }  # fmt: skip


@pytest.mark.parametrize("protocol", ["--rest", "--grpc"])
def test_a_model_the_server_does_not_have_is_an_error(
    reviews_csv: Path, server: ServerProcess, protocol: str, capsys: pytest.CaptureFixture[str]
) -> None:
    address = server.rest_url if protocol == "--rest" else server.grpc_target
    assert main([str(reviews_csv), protocol, address, "--model-name", "nope"]) == 2
    line = _one_error_line(capsys)
    assert "nope" in line and ("404" in line or "NOT_FOUND" in line)
    assert not (reviews_csv.parent / "reviews.scored.csv").exists()
