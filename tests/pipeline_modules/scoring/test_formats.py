"""Every input row ends up in the output or in the rejects file, with the toy model, in each of the three formats."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline_modules.scoring import InProcessScorer, ScoreOptions, score_file


def _rejects(path: Path) -> list[tuple[int, str]]:
    return [(r["row"], r["reason"]) for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())]


def _check_scores(direct_scores: Any, texts: list[str], probabilities: list[Any], labels: list[str]) -> None:
    expected_p, expected_l = direct_scores(texts)
    np.testing.assert_array_equal(np.asarray(probabilities, dtype=np.float32), expected_p)
    assert labels == expected_l


CSV_BYTES = (
    b"id,review,stars\n"
    b"1,A wonderful film,9\n"  # row 1
    b"2,,3\n"  # 2: empty
    b"3,   ,3\n"  # 3: whitespace only
    b"4,\xff\xfe broken,1\n"  # 4: not UTF-8 in the text
    b"\n"  # 5: blank line
    b'5,"awful, boring ""film""\nsecond line",2\n'  # 6: quoted comma, quote and line break
    b"6,too,many,fields\n"  # 7
    b"7,great,\xe9t\xe9\n"  # 8: not UTF-8 in another column
    b"8,Caf\xc3\xa9 was terrible,4\n"  # 9: UTF-8 accent, no problem
)


def test_csv_scores_good_rows_and_rejects_each_bad_one_with_its_reason(
    tmp_path: Path, toy_scorer: InProcessScorer, direct_scores: Any
) -> None:
    source = tmp_path / "reviews.csv"
    source.write_bytes(CSV_BYTES)
    summary = score_file(source, toy_scorer)
    output, rejects = tmp_path / "reviews.scored.csv", tmp_path / "reviews.scored.rejects.jsonl"
    assert (summary.output, summary.rejects) == (str(output), str(rejects))
    with open(output, encoding="utf-8", newline="") as f:
        header, *records = list(csv.reader(f))
    assert header == ["id", "review", "stars", "probability", "label"]
    assert [r[:3] for r in records] == [
        ["1", "A wonderful film", "9"],
        ["5", 'awful, boring "film"\nsecond line', "2"],
        ["8", "Café was terrible", "4"],
    ]
    _check_scores(direct_scores, [r[1] for r in records], [float(r[3]) for r in records], [r[4] for r in records])
    assert _rejects(rejects) == [
        (2, "empty_text"), (3, "empty_text"), (4, "not_utf8"), (5, "blank_line"), (7, "wrong_field_count"),
        (8, "not_utf8"),
    ]  # fmt: skip
    assert (summary.rows, summary.scored, summary.rejected) == (9, 3, 6)
    assert summary.reasons == {"empty_text": 2, "not_utf8": 2, "blank_line": 1, "wrong_field_count": 1}
    assert not list(tmp_path.glob("*.partial"))


def test_tsv_keeps_its_delimiter(tmp_path: Path, toy_scorer: InProcessScorer) -> None:
    source = tmp_path / "in.tsv"
    source.write_text("review\tid\nso boring, so bad\t1\n", encoding="utf-8")
    score_file(source, toy_scorer, tmp_path / "out.tsv")
    assert (tmp_path / "out.tsv").read_text(encoding="utf-8").splitlines() == [
        "review\tid\tprobability\tlabel",
        "so boring, so bad\t1\t0.11920292\tnegative",
    ]


def _jsonl_lines() -> list[bytes]:
    return [
        '\ufeff{"review": "I loved it", "id": 1, "meta": {"a": [1, 2.5]}}'.encode(),  # 1: byte-order mark, kept data
        b'{"review": ""}',  # 2
        b'{"review": "\xff bad"}',  # 3
        b'{"review": "ok", ',  # 4
        b"[1, 2]",  # 5
        b'{"id": 6}',  # 6
        b'{"review": 42}',  # 7
        b"   ",  # 8
        b'{"review": "fine", "label": "pos"}',  # 9: would lose its own label
        b'{"review": "' + b"x" * 200 + b'"}',  # 10: over the line cap below
        '{"review": "the worst, ünïcödé"}'.encode(),  # 11: last line, no line end
    ]


def test_jsonl_scores_good_lines_and_rejects_each_bad_one_with_its_reason(
    tmp_path: Path, toy_scorer: InProcessScorer, direct_scores: Any
) -> None:
    source = tmp_path / "reviews.jsonl"
    source.write_bytes(b"\n".join(_jsonl_lines()))
    summary = score_file(source, toy_scorer, options=ScoreOptions(max_field_bytes=100))
    records = [json.loads(line) for line in (tmp_path / "reviews.scored.jsonl").read_text("utf-8").splitlines()]
    assert [{k: v for k, v in r.items() if k not in ("probability", "label")} for r in records] == [
        {"review": "I loved it", "id": 1, "meta": {"a": [1, 2.5]}},
        {"review": "the worst, ünïcödé"},
    ]
    _check_scores(direct_scores, [r["review"] for r in records], [r["probability"] for r in records],
                  [r["label"] for r in records])  # fmt: skip
    assert _rejects(tmp_path / "reviews.scored.rejects.jsonl") == [
        (2, "empty_text"), (3, "not_utf8"), (4, "malformed_json"), (5, "not_an_object"), (6, "missing_text"),
        (7, "text_not_string"), (8, "blank_line"), (9, "output_column_exists"), (10, "line_too_long"),
    ]  # fmt: skip
    assert (summary.rows, summary.scored, summary.rejected) == (11, 2, 9)


def test_parquet_keeps_schema_and_columns_and_rejects_nulls_and_empty_texts(
    tmp_path: Path, toy_scorer: InProcessScorer, direct_scores: Any
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "id": pa.array([1, 2, 3, 4], pa.int64()),
            "review": pa.array(["great", None, " ", "an awful film"], pa.string()),
            "tags": pa.array([["a"], [], None, ["b", "c"]], pa.list_(pa.string())),
        }
    )
    source = tmp_path / "reviews.parquet"
    pq.write_table(table, source, row_group_size=2)
    summary = score_file(source, toy_scorer)
    scored = pq.read_table(tmp_path / "reviews.scored.parquet")
    assert scored.schema.names == ["id", "review", "tags", "probability", "label"]
    assert scored.schema.field("probability").type == pa.float32()
    assert scored.column("id").to_pylist() == [1, 4]
    assert scored.column("tags").to_pylist() == [["a"], ["b", "c"]]
    _check_scores(direct_scores, ["great", "an awful film"], scored.column("probability").to_pylist(),
                  scored.column("label").to_pylist())  # fmt: skip
    assert _rejects(tmp_path / "reviews.scored.rejects.jsonl") == [(2, "missing_text"), (3, "empty_text")]
    assert (summary.rows, summary.scored, summary.rejected) == (4, 2, 2)


def test_parquet_binary_text_column_rejects_bytes_that_are_not_utf8(
    tmp_path: Path, toy_scorer: InProcessScorer
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = tmp_path / "bytes.parquet"
    pq.write_table(pa.table({"review": pa.array([b"\xff\xfe", b"bad film"], pa.binary())}), source)
    score_file(source, toy_scorer, tmp_path / "out.parquet")
    assert pq.read_table(tmp_path / "out.parquet").column("label").to_pylist() == ["negative"]
    assert _rejects(tmp_path / "out.rejects.jsonl") == [(1, "not_utf8")]


def _mixed_inputs(tmp_path: Path) -> dict[str, Path]:
    """25 rows, a bad one every few, in each format."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    words = ["great", "awful", "", "boring film", "wonderful", "  ", "a plain sentence"]
    texts = [
        f"{words[i % len(words)]} {i}" if words[i % len(words)].strip() else words[i % len(words)] for i in range(25)
    ]
    paths = {"csv": tmp_path / "in.csv", "jsonl": tmp_path / "in.jsonl", "parquet": tmp_path / "in.parquet"}
    with open(paths["csv"], "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["n", "review"])
        writer.writerows([i, t] for i, t in enumerate(texts))
    lines = [json.dumps({"n": i, "review": t}) for i, t in enumerate(texts)]
    lines[7] = "{not json"
    paths["jsonl"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    pq.write_table(pa.table({"n": list(range(25)), "review": texts}), paths["parquet"], row_group_size=10)
    return paths


def _read_back(path: Path, fmt: str) -> tuple[list[Any], list[float]]:
    """The rows of an output file without their probability, and the probabilities."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        records = pq.read_table(path).to_pylist()
    elif fmt == "jsonl":
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    else:
        with open(path, encoding="utf-8", newline="") as f:
            records = list(csv.DictReader(f))
    return [{k: v for k, v in r.items() if k != "probability"} for r in records], [
        float(r["probability"]) for r in records
    ]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_many_chunks_give_the_same_files_as_one_chunk(tmp_path: Path, toy_scorer: InProcessScorer, fmt: str) -> None:
    """Same rows, columns, labels and rejects; probabilities to float32 rounding, which TensorFlow 2.21's vectorised
    sigmoid changes by one unit in the last place between a batch of one text and a larger one."""
    source = _mixed_inputs(tmp_path)[fmt]
    results, probabilities = [], []
    for chunk_size, batch_size, concurrency in ((10_000, 64, 1), (1, 1, 1), (4, 3, 3), (7, 2, 2)):
        output = tmp_path / f"out-{chunk_size}.{source.suffix.lstrip('.')}"
        options = ScoreOptions(chunk_size=chunk_size, batch_size=batch_size, concurrency=concurrency)
        summary = score_file(source, toy_scorer, output, options=options)
        records, found = _read_back(output, fmt)
        rejects = output.with_name(f"{output.stem}.rejects.jsonl").read_bytes()
        results.append((records, rejects, summary.rows, summary.scored, dict(summary.reasons)))
        probabilities.append(found)
    assert results[0][2] == 25 and results[0][3] < 25  # some rows were rejected: the comparison covers them
    assert all(result == results[0] for result in results[1:])
    for found in probabilities[1:]:
        np.testing.assert_allclose(found, probabilities[0], rtol=1e-6)
