"""The int8 gate's passes over the eval split: the Keras model scores only the fp32 agreement examples (the fp32
graph's own probability is the reference for the rest), the graphs run as the server runs them, and a long pass logs
its progress."""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from model_server.onnx_engine import ONNX_AUTO
from pipeline_modules import features
from pipeline_modules.trainer import onnx_export


class _Keras:
    """Counts the examples it scores; logit 0 (probability 0.5) for every one."""

    def __init__(self) -> None:
        self.examples = 0

    def __call__(self, inputs: dict[str, Any], training: bool) -> Any:
        n = int(inputs[features.INPUT_WORD_IDS].shape[0])
        self.examples += n
        return tf.zeros([n, 1])


class _Session:
    """A graph answering 0.5 + 1e-3 for every row (the fake session `run_session` drives)."""

    def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        n = len(feed[features.INPUT_WORD_IDS])
        return [np.full([n], 0.501, np.float32), np.array(["positive"] * n, dtype=object)]


def _dataset(batches: int, size: int) -> list[tuple[dict[str, np.ndarray], np.ndarray]]:
    ids = np.ones([size, 4], np.int64)
    inputs = {k: ids for k in features.ENCODER_INPUT_KEYS}
    return [(inputs, np.array([i % 2 for i in range(size)])) for _ in range(batches)]


def test_only_the_agreement_examples_run_through_keras(caplog: pytest.LogCaptureFixture) -> None:
    keras = _Keras()
    batches = onnx_export._eval_batches(keras, _dataset(10, 64), limit=600)  # type: ignore[arg-type]
    assert sum(len(b["label"]) for b in batches) == 600
    assert keras.examples == 256 == onnx_export.FP32_AGREEMENT_EXAMPLES
    assert ["expected" in b for b in batches] == [True] * 4 + [False] * 6
    figures, correct = onnx_export._measure(_Session(), batches, [], "fp32")
    assert figures["max_abs_diff"] == pytest.approx(0.001, abs=1e-6)  # against Keras's 0.5, first 256 only
    assert all("expected" in b for b in batches)  # the rest now compare with the fp32 graph
    assert correct.sum() == 300 and figures["accuracy"] == 0.5
    int8, _ = onnx_export._measure(_Session(), batches, [], "int8")
    assert int8["max_abs_diff"] == pytest.approx(0.001, abs=1e-6)


def test_a_long_pass_logs_its_progress(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(onnx_export, "PROGRESS_EXAMPLES", 100)
    batches = onnx_export._eval_batches(_Keras(), _dataset(10, 64), limit=640)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger=onnx_export.__name__):
        onnx_export._measure(_Session(), batches, [], "fp32")
    lines = [r.getMessage() for r in caplog.records if "eval examples" in r.getMessage()]
    assert len(lines) == 10 and lines[-1].startswith("Export: fp32 graph scored 640/640 eval examples")


class _Recording(_Session):
    """Records each call's shape and the thread it ran on."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, ...], str]] = []

    def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.calls.append((feed[features.INPUT_WORD_IDS].shape, threading.current_thread().name))
        return super().run(names, feed)


def test_the_graphs_run_as_the_server_runs_them(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    monkeypatch.setattr(onnx_export, "onnx_session", lambda graph, precision: made.append(precision) or _Recording())

    class _Graph:
        def SerializeToString(self) -> bytes:  # noqa: N802 - the ONNX ModelProto method
            return b""

    fp32, int8 = onnx_export._session(_Graph(), "fp32"), onnx_export._session(_Graph(), "int8")
    assert made == ["fp32", "int8"]  # the server's session options for each precision (int8: one thread per call)
    rows = 2 * ONNX_AUTO.max_call_tokens // 128  # rows of 128 tokens: two calls' worth
    ids = np.ones([rows, 128], np.int64)
    batch = {**{k: ids for k in features.ENCODER_INPUT_KEYS}, "label": np.zeros([rows]), "expected": np.full(rows, 0.5)}
    onnx_export._measure(fp32, [batch], [], "fp32")
    assert [shape for shape, _ in fp32.calls] == [(rows // 2, 128)] * 2  # planned by length, as served
    onnx_export._measure(int8, [batch], [], "int8")
    assert [shape for shape, _ in int8.calls] == [(1, 128)] * rows  # one row a call
    if ONNX_AUTO.row_threads > 1:  # side by side on the server's row pool
        assert {thread for _, thread in int8.calls} <= {f"onnx-rows_{i}" for i in range(ONNX_AUTO.row_threads)}
