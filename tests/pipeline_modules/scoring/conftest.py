"""Fixtures for batch scoring: the tests' toy SavedModel (built once), its in-process scorer, and what it answers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from pipeline_modules.scoring import InProcessScorer


@pytest.fixture(scope="session")
def toy_model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The keyword model with the pipeline's serving contract, as a one-version TF Serving base path."""
    from tests.doubles.toy_model import build_toy_model

    base = tmp_path_factory.mktemp("scoring_models") / "toy"
    build_toy_model(str(base / "1"))
    return str(base)


@pytest.fixture(scope="session")
def toy_scorer(toy_model_dir: str) -> Iterator[InProcessScorer]:
    scorer = InProcessScorer(toy_model_dir)
    yield scorer
    scorer.close()


@pytest.fixture(scope="session")
def direct_scores(toy_model_dir: str):  # type: ignore[no-untyped-def]
    """The model's own answers, called without the scoring package: (float32 probabilities, labels)."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(Path(toy_model_dir) / "1")).signatures["serving_default"]

    def score(texts: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        out = signature(text=tf.constant(list(texts)))
        return out["probability"].numpy(), [v.decode() for v in out["label"].numpy()]

    return score
