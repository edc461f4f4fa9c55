"""An int8 ONNX graph is served one row at a time: dynamic quantization scales each call by its own activations, so
in a batch a text's score would depend on its batch mates; served row by row it depends on the text alone."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from model_server.model import ServableModel
from model_server.onnx_engine import OnnxOptions, row_by_row, run_session
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
