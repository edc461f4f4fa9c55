"""The in-process scorer hands the model bytes, as TF Serving's transports do, so a version's ONNX engine tokenizes
printable-ASCII reviews with its fast tokenizer instead of the TensorFlow tokenize signature."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline_modules.scoring import InProcessScorer

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")


def test_in_process_scoring_uses_the_fast_tokenizer_and_scores_as_the_model(tmp_path: Path) -> None:
    from tests.doubles.onnx_sentiment import build_onnx_sentiment_model

    version = build_onnx_sentiment_model(str(tmp_path / "tiny" / "1"))
    scorer = InProcessScorer(str(tmp_path / "tiny"))
    try:
        engine = scorer.model.onnx_engine("serving_default")
        assert engine is not None and engine.fast is not None, scorer.model.engines
        tokenized_by_tf: list[Any] = []
        run_tf = engine._tokenize_tf
        engine._tokenize_tf = lambda texts: tokenized_by_tf.append(list(texts)) or run_tf(texts)  # type: ignore[method-assign]
        texts = ["a great film", "dull and bad", "caf\u00e9 au lait"]  # the last is not ASCII: TensorFlow's
        probabilities, labels = scorer.score(texts)
        assert tokenized_by_tf == [["caf\u00e9 au lait".encode()]]
    finally:
        scorer.close()
    import tensorflow as tf

    want = tf.saved_model.load(version).signatures["serving_default"](text=tf.constant(texts))
    np.testing.assert_allclose(probabilities, np.ravel(want["probability"].numpy()), atol=1e-5)
    assert labels == [v.decode() for v in np.ravel(want["label"].numpy())]
