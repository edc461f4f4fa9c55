"""Plain helpers shared by the model server tests (a distinct module name: conftest modules cannot be imported)."""

from __future__ import annotations

import base64
import json
import math
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from model_server.client import RestClient

MODEL = "sentiment"
V1_BIAS = 0.0
V2_BIAS = 2.0
WARMUP_TEXTS = ("a great film", "a dull film")


def expected_probability(text: str, bias: float) -> float:
    """The toy model's answer, computed independently: sigmoid(#positive - #negative words + bias)."""
    from tests.doubles.toy_model import NEGATIVE_WORDS, POSITIVE_WORDS

    words = re.sub(r"[^\w']+", " ", text.lower()).split()
    score = sum(w in POSITIVE_WORDS for w in words) - sum(w in NEGATIVE_WORDS for w in words)
    return 1.0 / (1.0 + math.exp(-(score + bias)))


def serialized_example(review: str) -> bytes:
    from tensorflow.core.example import example_pb2

    ex = example_pb2.Example()
    ex.features.feature["review"].bytes_list.value.append(review.encode("utf-8"))
    return ex.SerializeToString()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def copy_version(source: str, base_path: Path, version: int) -> Path:
    """Publish a version atomically (hidden temp dir + rename), like the pipeline's Pusher."""
    from tests.doubles.toy_model import publish_version

    return Path(publish_version(str(base_path), version, source_dir=source))


def write_broken_version(base_path: Path, version: int) -> Path:
    """A version directory that looks complete but holds garbage instead of a SavedModel."""
    tmp = base_path / f".{version}.incomplete"
    (tmp / "variables").mkdir(parents=True)
    (tmp / "saved_model.pb").write_bytes(b"this is not a protocol buffer \x00\xff" * 10)
    os.rename(tmp, base_path / str(version))
    return base_path / str(version)


def call_json(
    client: RestClient, method: str, path: str, body: bytes | str | dict | None = None, headers: dict | None = None
) -> tuple[int, dict]:
    """One REST call; checks the invariants every answer must keep (JSON content type, error shape, no trace)."""
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode("utf-8")
    status, hdrs, data = client.request(method, path, body, headers)
    assert hdrs.get("content-type", "").startswith("application/json"), (status, hdrs)
    assert b"Traceback" not in data and b'File "' not in data
    doc = json.loads(data)
    if status >= 400:
        assert set(doc) == {"error"} and isinstance(doc["error"], str) and doc["error"], doc
    return status, doc


def metric_samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples of one metric from the Prometheus text format, keyed by their sorted labels."""
    samples = {}
    pattern = re.compile(rf"^{re.escape(name)}(?:{{(.*)}})? (\S+)$")
    for line in text.splitlines():
        m = pattern.match(line)
        if m:
            labels = tuple(sorted(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1) or "")))
            samples[labels] = float(m.group(2))
    return samples


def wait_for(predicate: Callable[[], object], timeout: float = 120.0, what: str = "condition") -> object:
    """Poll until predicate() is truthy (bounded), for state that changes asynchronously in the server."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
