"""Tiny request logs (written by the server's own RequestLog) and training statistics, built per test."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from model_server import logs
from model_server.hints import SignatureHints
from model_server.metrics import Metrics
from model_server.model import SignatureInfo
from pipeline_modules import features

SIGNATURE = SignatureInfo(
    "serving_default", {}, {}, "tensorflow/serving/predict", SignatureHints(input_features={"text": "review"})
)
WORDS = ("the", "film", "was", "a", "story", "acting", "plot", "and", "of", "great", "bad", "music", "scene")


def imdb_like_texts(n: int, seed: int = 0) -> list[str]:
    """Reviews whose lengths spread over the length buckets like IMDB's (20 to 700 words), all distinct."""
    rng = random.Random(seed)
    return [
        f"review {i} " + " ".join(rng.choice(WORDS) for _ in range(int(rng.lognormvariate(5.0, 0.6)))) for i in range(n)
    ]


def short_texts(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [f"ok {i} " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 3))) for i in range(n)]


def write_log(
    path: Path,
    texts: Sequence[str],
    *,
    positive_share: float = 0.5,
    model: str = "bert_imdb",
    version: int = 1,
    at: dt.datetime | None = None,
    monkeypatch: object | None = None,
    seed: int = 0,
) -> None:
    """Appends one logged request per text through RequestLog, stamped ``at`` (default: now)."""
    rng = random.Random(seed)
    if at is not None:
        stamp = at.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        monkeypatch.setattr(logs, "utc_now", lambda: stamp)  # type: ignore[attr-defined]
    request_log = logs.RequestLog(str(path), 1.0, Metrics())
    for i, text in enumerate(texts):
        p = rng.uniform(0.5, 1.0) if rng.random() < positive_share else rng.uniform(0.0, 0.5)
        outputs = {
            features.PROBABILITY_OUTPUT: np.array([p], dtype=np.float32),
            features.LABEL_OUTPUT: np.array([features.POSITIVE if p >= 0.5 else features.NEGATIVE], dtype=object),
        }
        request_log.submit(
            f"r{i}", model, version, SIGNATURE, {"text": np.array([text.encode()], dtype=object)}, outputs
        )
    request_log.close()


def write_training_statistics(folder: Path, texts: Sequence[str], positive_share: float = 0.5, seed: int = 0) -> Path:
    """A StatisticsGen-like artifact folder (Split-train/FeatureStats.pb) for these training reviews."""
    import pandas as pd
    import tensorflow_data_validation as tfdv

    rng = random.Random(seed)
    counts = [len(t.split()) for t in texts]
    labels = [int(rng.random() < positive_share) for _ in texts]
    frame = pd.DataFrame(
        {
            features.REVIEW_KEY: pd.Series(list(texts), dtype=object),
            features.LABEL_KEY: pd.Series(labels, dtype="int64"),
            features.RATING_KEY: pd.Series([9 if y else 2 for y in labels], dtype="int64"),
            features.WORD_COUNT_KEY: pd.Series(counts, dtype="int64"),
            features.LENGTH_BUCKET_KEY: pd.Series([features.length_bucket(c) for c in counts], dtype=object),
        }
    )
    split = folder / "Split-train"
    split.mkdir(parents=True, exist_ok=True)
    (split / "FeatureStats.pb").write_bytes(tfdv.generate_statistics_from_dataframe(frame).SerializeToString())
    return folder
