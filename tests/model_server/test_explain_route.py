"""REST `:explain` (KServe V1's verb, a `:predict` body): runs the model's `explain` signature, on a real server
holding a tiny in-process BERT with one (tests/doubles/tiny_bert.py) and the keyword toy model without one."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from model_server.client import RestClient
from model_server.process import ServerProcess, start_server
from tests.doubles.tiny_bert import build_tiny_model, export_tiny_model, tokenization_for, train_tiny_model
from tests.doubles.toy_model import build_toy_model
from tests.model_server.ms_helpers import call_json

EXPLAINABLE = "explainable"
PLAIN = "plain"
TEXTS = ["the film was wonderful", "Unbelievable, awful acting!"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    from pipeline_modules.trainer.explain import WordPieces

    root = tmp_path_factory.mktemp("explain_route")
    tokenization = tokenization_for(str(root), max_seq_length=16)
    model = build_tiny_model()
    train_tiny_model(model, WordPieces(tokenization), steps=30)
    export_tiny_model(model, tokenization, str(root / EXPLAINABLE / "1"), steps=32)
    build_toy_model(str(root / PLAIN / "1"))
    config = root / "models.config"
    entries = (
        f'config {{ name: "{n}" base_path: "{root / n}" model_platform: "tensorflow" }}' for n in (EXPLAINABLE, PLAIN)
    )
    config.write_text("model_config_list {\n" + "\n".join(entries) + "\n}\n")
    srv = start_server(
        model_config_file=str(config), grpc=False, extra_args=[f"--request_log_path={root / 'requests.jsonl'}"]
    )
    srv.wait_for_model(EXPLAINABLE, timeout=180)
    srv.wait_for_model(PLAIN, timeout=180)
    srv.work_dir = root  # type: ignore[attr-defined]
    yield srv
    assert srv.stop() == 0


@pytest.fixture(scope="module")
def rest(server: ServerProcess) -> Iterator[RestClient]:
    with server.rest_client() as client:
        yield client


def test_explain_answers_per_word_attributions(rest: RestClient) -> None:
    status, doc = call_json(rest, "POST", f"/v1/models/{EXPLAINABLE}:explain", {"instances": TEXTS})
    assert status == 200, doc
    rows = doc["predictions"]
    assert [row["words"][: row["word_count"]] for row in rows] == [t.split() for t in TEXTS]
    _, predicted = call_json(rest, "POST", f"/v1/models/{EXPLAINABLE}:predict", {"instances": TEXTS})
    for row, prediction in zip(rows, predicted["predictions"], strict=True):
        assert row["probability"] == pytest.approx(prediction["probability"], abs=1e-6)
        # 32 midpoint steps on this model miss by ~1e-4 (the sum's error, 1/steps^2); 2e-3 leaves room for stacks.
        total = sum(row["attributions"])
        assert total == pytest.approx(row["probability"] - row["baseline_probability"], abs=2e-3)
        assert not any(row["truncated"])


def test_explain_takes_every_predict_body_and_model_path(rest: RestClient) -> None:
    want = call_json(rest, "POST", f"/v1/models/{EXPLAINABLE}:explain", {"instances": TEXTS[:1]})[1]
    for path, body in [
        (f"/v1/models/{EXPLAINABLE}/versions/1:explain", {"instances": TEXTS[:1]}),
        (f"/v1/models/{EXPLAINABLE}:explain", {"signature_name": "explain", "inputs": {"text": TEXTS[:1]}}),
        (f"/v1/models/{EXPLAINABLE}:predict", {"signature_name": "explain", "instances": TEXTS[:1]}),
    ]:
        status, doc = call_json(rest, "POST", path, body)
        assert status == 200, (path, doc)
        outputs = doc["predictions"][0] if "predictions" in doc else {k: v[0] for k, v in doc["outputs"].items()}
        assert outputs["words"] == want["predictions"][0]["words"]
        assert np.allclose(outputs["attributions"], want["predictions"][0]["attributions"], atol=1e-6)


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        (f"/v1/models/{EXPLAINABLE}:explain", {"instances": ["  "]}, 400, "empty or whitespace-only"),
        (f"/v1/models/{EXPLAINABLE}:explain", {"instances": [""]}, 400, "empty or whitespace-only"),
        (f"/v1/models/{PLAIN}:explain", {"instances": TEXTS}, 404, "has no 'explain' signature"),
        ("/v1/models/nonesuch:explain", {"instances": TEXTS}, 404, "nonesuch"),
        (f"/v1/models/{EXPLAINABLE}:explain", {"signature_name": "x", "instances": TEXTS}, 400, "leave signature_name"),
        (f"/v1/models/{EXPLAINABLE}:explain", {"instances": [1.5]}, 400, ""),
        (f"/v1/models/{EXPLAINABLE}:explain", {"nothing": []}, 400, "'inputs' or 'instances'"),
    ],
)
def test_bad_explain_requests_get_a_clear_4xx(
    rest: RestClient, path: str, body: dict, status: int, message: str
) -> None:
    got, doc = call_json(rest, "POST", path, body)
    assert got == status, doc
    assert message in doc["error"], doc


def test_the_request_log_keeps_explained_words_out(server: ServerProcess, rest: RestClient) -> None:
    """`words` are the raw text: an explain call leaves no record (the masked predict records stay)."""
    secret = "wonderful film for alice@example.com"
    assert call_json(rest, "POST", f"/v1/models/{EXPLAINABLE}:explain", {"instances": [secret]})[0] == 200
    assert call_json(rest, "POST", f"/v1/models/{EXPLAINABLE}:predict", {"instances": [secret]})[0] == 200
    log = Path(server.work_dir) / "requests.jsonl"  # type: ignore[attr-defined]
    records: list[dict] = []
    for _ in range(100):  # the log is written by a background thread
        records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        if any(r["signature"] == "serving_default" for r in records):
            break
        time.sleep(0.1)
    assert any(r["signature"] == "serving_default" for r in records), records
    assert all(r["signature"] != "explain" for r in records)
    assert "alice@example.com" not in log.read_text()
