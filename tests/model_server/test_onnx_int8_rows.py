"""How the ONNX engine splits a batch into calls (``onnx_engine.call_groups``). An int8 graph is served one row at a
time: dynamic quantization scales each call by its own activations, so in a batch a text's score would depend on its
batch mates; served row by row it depends on the text alone. An fp32 graph runs rows sorted by length in calls of at
most ``--onnx_max_call_tokens`` padded tokens, each cut to its longest row, and answers as one call would."""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from model_server.config import ONNX_MAX_CALL_TOKENS, parse_args
from model_server.model import ServableModel
from model_server.model_config import ConfigError
from model_server.onnx_engine import OnnxOptions, call_groups, row_by_row, row_pool, run_session
from model_server.onnx_manifest import read_onnx_manifest, write_onnx_manifest
from tests.doubles.onnx_sentiment import build_onnx_sentiment_model

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")

TEXTS = ["a great film", "dull and bad and long and boring", "good", "the worst acting i have ever seen here"]


def _int8_version(tmp_path: Path) -> str:
    import onnx

    from pipeline_modules.trainer.onnx_export import int8_graph

    version = build_onnx_sentiment_model(str(tmp_path / "tiny" / "1"))
    spec = read_onnx_manifest(version)["serving_default"]
    graph, why_not = int8_graph(onnx.load(str(Path(version) / spec.graph)))
    if graph is None:
        pytest.skip(why_not)  # ONNX Runtime 1.26 needs sympy to quantize
    onnx.save(graph, str(Path(version) / spec.graph))
    accuracy = {"fp32": 0.9, "int8": 0.9, "examples": 10.0}
    write_onnx_manifest(
        version, {"serving_default": dataclasses.replace(spec, precision="int8", tolerance=0.5, accuracy=accuracy)}
    )
    return version


def test_an_int8_engine_scores_a_text_alike_whatever_its_batch(tmp_path: Path) -> None:
    model = ServableModel("tiny", 1, _int8_version(tmp_path))
    model.load(warmup=False, onnx=OnnxOptions(max_batch_size=0))
    try:
        assert model.engines["serving_default"].startswith("onnxruntime int8"), model.engines
        engine = model.onnx_engine("serving_default")
        assert engine is not None

        def served(texts: list[str]) -> np.ndarray:
            batch = np.empty(len(texts), dtype=object)
            batch[:] = [t.encode() for t in texts]
            return np.ravel(model.predict("serving_default", {"text": batch})["probability"])

        alone = np.array([served([t])[0] for t in TEXTS])
        np.testing.assert_array_equal(served(TEXTS), alone)
        np.testing.assert_array_equal(served(TEXTS[::-1]), alone[::-1])
        # why: the same graph run on the whole batch gives the first text another score than it gets alone
        batch = np.empty(len(TEXTS), dtype=object)
        batch[:] = [t.encode() for t in TEXTS]
        feed = engine.tokenize(batch)
        (together,) = run_session(engine.session, ["probability"], feed, rows=False)
        assert np.max(np.abs(np.ravel(together) - alone)) > 0
    finally:
        model.unload()


def test_only_lower_precisions_run_row_by_row() -> None:
    assert row_by_row("int8") and not row_by_row("fp32")


def test_run_session_by_rows_cuts_each_row_to_its_mask() -> None:
    seen: list[dict[str, np.ndarray]] = []

    class Session:
        def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
            seen.append(feed)
            return [np.sum(feed["input_word_ids"], axis=1, keepdims=True).astype(np.float32)]

    ids = np.array([[5, 6, 0, 0], [7, 8, 9, 0]], np.int64)
    feed = {"input_word_ids": ids, "input_mask": (ids != 0).astype(np.int64)}
    (out,) = run_session(Session(), ["sum"], feed, rows=True)
    np.testing.assert_array_equal(out, [[11.0], [24.0]])
    assert [f["input_word_ids"].tolist() for f in seen] == [[[5, 6]], [[7, 8, 9]]]
    seen.clear()
    (out,) = run_session(Session(), ["sum"], feed, rows=False)
    assert len(seen) == 1 and out.shape == (2, 1)


def test_a_lower_precision_may_flip_a_label_but_not_exceed_the_tolerance() -> None:
    from model_server.onnx_checks import EngineRejected, _compare

    want = {"probability": np.array([0.49, 0.8], np.float32), "label": np.array([b"negative", b"positive"], object)}
    got = {"probability": np.array([0.51, 0.8], np.float32), "label": np.array([b"positive", b"positive"], object)}
    worst, flipped = _compare(want, got, 0.05, "the probe batch", flips_allowed=True)
    assert worst == pytest.approx(0.02, abs=1e-6) and flipped == {0}
    with pytest.raises(EngineRejected, match="output label differs"):
        _compare(want, got, 0.05, "the probe batch")  # fp32: labels must be equal
    with pytest.raises(EngineRejected, match="output probability differs"):
        _compare(want, got, 0.01, "the probe batch", flips_allowed=True)


class _RecordingSession:
    """Sums each row's ids (so an answer says which row it was) and records the shapes it was called with."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, ...]] = []

    def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.calls.append(feed["input_word_ids"].shape)
        total = np.sum(feed["input_word_ids"], axis=1)
        return [total.astype(np.float32), np.array([f"row {t}" for t in total], dtype=object)]


def _feed(lengths: list[int], width: int) -> dict[str, np.ndarray]:
    ids = np.zeros([len(lengths), width], np.int64)
    for i, n in enumerate(lengths):
        ids[i, :n] = 100 * (i + 1) + np.arange(1, n + 1)  # row i's ids sum to something no other row's does
    return {"input_word_ids": ids, "input_mask": (ids != 0).astype(np.int64), "input_type_ids": np.zeros_like(ids)}


def test_call_groups_plan_by_length_within_the_token_budget() -> None:
    lengths = np.array([3, 256, 16, 200, 256, 5])
    groups = call_groups(lengths, rows=False, max_tokens=512)
    assert [g.tolist() for g in groups] == [[1, 4], [3, 2], [5, 0]]  # longest first; 2 x 256, 2 x 200, 2 x 5
    assert sorted(np.concatenate(groups).tolist()) == list(range(6))  # every row once
    assert [g.tolist() for g in call_groups(lengths, rows=False, max_tokens=100)][:2] == [[1], [4]]  # a long row alone
    assert [g.tolist() for g in call_groups(lengths, rows=False, max_tokens=0)] == [list(range(6))]  # one call
    assert [g.tolist() for g in call_groups(lengths, rows=True, max_tokens=512)] == [[i] for i in range(6)]
    assert [g.tolist() for g in call_groups(np.array([16] * 32), rows=False, max_tokens=1024)] == [list(range(32))]


def test_the_call_token_flag_defaults_to_the_measured_budget_and_refuses_negatives() -> None:
    assert (
        parse_args(["--model_base_path=/m"]).onnx_max_call_tokens
        == ONNX_MAX_CALL_TOKENS
        == OnnxOptions().max_call_tokens
    )
    assert parse_args(["--model_base_path=/m", "--onnx_max_call_tokens=0"]).onnx_max_call_tokens == 0
    with pytest.raises(ConfigError, match="--onnx_max_call_tokens must be >= 0"):
        parse_args(["--model_base_path=/m", "--onnx_max_call_tokens=-1"])


def test_run_session_in_planned_calls_answers_in_the_batch_order() -> None:
    feed = _feed([3, 9, 2, 8], width=9)
    whole, label = run_session(_RecordingSession(), ["sum", "label"], feed, rows=False)
    session = _RecordingSession()
    planned, planned_label = run_session(session, ["sum", "label"], feed, rows=False, max_tokens=18)
    np.testing.assert_array_equal(planned, whole)  # the same rows' answers, in the batch's order
    assert planned_label.tolist() == label.tolist()
    assert session.calls == [(2, 9), (2, 3)]  # rows 1 and 3 cut to 9 tokens, then rows 0 and 2 cut to 3
    session = _RecordingSession()
    run_session(session, ["sum", "label"], _feed([4, 4], width=4), rows=False, max_tokens=1024)
    assert session.calls == [(2, 4)]  # nothing to cut: the batch as it came
    session = _RecordingSession()
    run_session(session, ["sum", "label"], _feed([4, 2], width=6), rows=False, max_tokens=1024)
    assert session.calls == [(2, 4)]  # one call, cut to the longest row


def test_an_fp32_graph_answers_alike_in_one_call_or_in_planned_calls(tmp_path: Path) -> None:
    model = ServableModel("tiny", 1, build_onnx_sentiment_model(str(tmp_path / "tiny" / "1")))
    model.load(warmup=False, onnx=OnnxOptions(max_batch_size=0, max_call_tokens=8))
    try:
        engine = model.onnx_engine("serving_default")
        assert engine is not None and engine.max_call_tokens == 8
        batch = np.empty(len(TEXTS), dtype=object)
        batch[:] = [t.encode() for t in TEXTS]
        feed = engine.tokenize(batch)
        (one_call,) = run_session(engine.session, ["probability"], feed, rows=False)
        real, calls = engine.session, []

        class Spy:
            def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
                calls.append(feed["input_mask"].shape)
                return list(real.run(names, feed))

        engine.session = Spy()
        served = model.predict("serving_default", {"text": batch})["probability"]
        np.testing.assert_allclose(np.ravel(served), np.ravel(one_call), atol=1e-6)
        assert len(calls) > 1 and all(rows * width <= 8 or rows == 1 for rows, width in calls), calls
    finally:
        model.unload()


def test_rows_run_side_by_side_on_workers_and_answer_in_order() -> None:
    threads: set[int] = set()

    class Slow(_RecordingSession):
        def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
            threads.add(threading.get_ident())
            time.sleep(0.01)  # long enough that the second worker takes the next row
            return super().run(names, feed)

    feed = _feed([3, 9, 2, 8, 5, 1], width=9)
    alone, labels = run_session(Slow(), ["sum", "label"], feed, rows=True)
    threads.clear()
    with ThreadPoolExecutor(2) as workers:
        side_by_side, labels_too = run_session(Slow(), ["sum", "label"], feed, rows=True, workers=workers)
    np.testing.assert_array_equal(side_by_side, alone)
    assert labels_too.tolist() == labels.tolist() and len(threads) == 2
    assert row_pool(1) is None and row_pool(2) is row_pool(2)  # one shared pool per size; one thread: the caller


def test_an_int8_engine_runs_single_threaded_sessions_side_by_side(tmp_path: Path) -> None:
    model = ServableModel("tiny", 1, _int8_version(tmp_path))
    model.load(warmup=False, onnx=OnnxOptions(max_batch_size=0, intra_op_threads=2))
    try:
        engine = model.onnx_engine("serving_default")
        assert engine is not None and engine.row_workers is row_pool(2)
        assert engine.session.get_session_options().intra_op_num_threads == 1
        batch = np.empty(len(TEXTS), dtype=object)
        batch[:] = [t.encode() for t in TEXTS]
        (one_by_one,) = run_session(engine.session, ["probability"], engine.tokenize(batch), rows=True)
        served = model.predict("serving_default", {"text": batch})["probability"]
        np.testing.assert_array_equal(np.ravel(served), np.ravel(one_by_one))
    finally:
        model.unload()
