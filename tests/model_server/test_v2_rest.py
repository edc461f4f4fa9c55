"""The Open Inference Protocol (KServe V2) over REST, against the real server process: plain HTTP and, where it
installs (the 3.11 stack), ``tritonclient.http``."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model_server.client import RestClient
from model_server.process import ServerProcess
from tests.model_server.ms_helpers import (
    MODEL,
    V1_BIAS,
    call_json,
    copy_version,
    expected_probability,
    metric_samples,
    serialized_example,
)

TEXTS = ["A great film, I loved it.", "Dull and boring.", "It was fine."]
INFER = f"/v2/models/{MODEL}/infer"


def _text_input(texts: list[str], **overrides: object) -> dict:
    return {"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts, **overrides}


def _infer(rest: RestClient, doc: dict | bytes | str, path: str = INFER) -> tuple[int, dict]:
    return call_json(rest, "POST", path, doc)


def _bytes_elements(values: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(v)) + v for v in values)


def test_health_and_server_metadata(rest: RestClient) -> None:
    assert call_json(rest, "GET", "/v2/health/live") == (200, {"live": True})
    assert call_json(rest, "GET", "/v2/health/ready") == (200, {"ready": True})
    status, doc = call_json(rest, "GET", "/v2")
    assert status == 200 and doc["name"] == "model_server" and "binary_tensor_data" in doc["extensions"]


def test_model_metadata_describes_the_serving_signature_in_v2_types(rest: RestClient) -> None:
    expected = {
        "name": MODEL,
        "versions": ["1"],
        "platform": "tensorflow_savedmodel",
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "probability", "datatype": "FP32", "shape": [-1]},
        ],
    }
    assert call_json(rest, "GET", f"/v2/models/{MODEL}") == (200, expected)
    assert call_json(rest, "GET", f"/v2/models/{MODEL}/versions/1") == (200, expected)
    status, doc = call_json(rest, "GET", f"/v2/models/{MODEL}?signature_name=from_examples")
    assert status == 200 and doc["inputs"] == [{"name": "examples", "datatype": "BYTES", "shape": [-1]}]


def test_model_ready_and_unknown_models_or_versions(rest: RestClient) -> None:
    assert call_json(rest, "GET", f"/v2/models/{MODEL}/ready") == (200, {"name": MODEL, "ready": True})
    assert call_json(rest, "GET", f"/v2/models/{MODEL}/versions/1/ready")[0] == 200
    assert call_json(rest, "GET", f"/v2/models/{MODEL}/versions/7/ready")[0] == 503
    assert call_json(rest, "GET", "/v2/models/nope/ready")[0] == 404
    assert call_json(rest, "GET", "/v2/models/nope")[0] == 404
    assert call_json(rest, "GET", f"/v2/models/{MODEL}/versions/7")[0] == 404
    assert call_json(rest, "GET", "/v2/nothing/here")[0] == 404


def test_infer_scores_text_as_bytes_and_echoes_the_id(rest: RestClient) -> None:
    status, doc = _infer(rest, {"id": "req-1", "inputs": [_text_input(TEXTS)]})
    assert status == 200, doc
    assert (doc["model_name"], doc["model_version"], doc["id"]) == (MODEL, "1", "req-1")
    outputs = {o["name"]: o for o in doc["outputs"]}
    assert [o["name"] for o in doc["outputs"]] == ["label", "probability"]
    assert outputs["probability"]["datatype"] == "FP32" and outputs["probability"]["shape"] == [3]
    want = [expected_probability(t, V1_BIAS) for t in TEXTS]
    np.testing.assert_allclose(outputs["probability"]["data"], want, atol=1e-6)
    assert outputs["label"]["data"] == ["positive" if p >= 0.5 else "negative" for p in want]


def test_infer_output_filter_version_path_and_nested_data(rest: RestClient) -> None:
    doc = {"inputs": [_text_input(["great"], shape=[1], data=[["great"]])], "outputs": [{"name": "probability"}]}
    status, out = _infer(rest, doc, f"/v2/models/{MODEL}/versions/1/infer")
    assert status == 200, out
    assert [o["name"] for o in out["outputs"]] == ["probability"] and "id" not in out


def test_binary_tensor_extension_in_and_out(rest: RestClient) -> None:
    """Triton's binary extension, as tritonclient.http uses it: raw BYTES in, raw outputs out; here on the
    ``from_examples`` signature, whose serialized tf.Examples are not UTF-8 and cannot travel as JSON strings."""
    examples = [serialized_example(t) for t in TEXTS]
    raw = _bytes_elements(examples)
    head = json.dumps(
        {
            "parameters": {"signature_name": "from_examples", "binary_data_output": True},
            "inputs": [
                {"name": "examples", "datatype": "BYTES", "shape": [3], "parameters": {"binary_data_size": len(raw)}}
            ],
        }
    ).encode()
    status, headers, body = rest.request("POST", INFER, head + raw, {"Inference-Header-Content-Length": str(len(head))})
    assert status == 200, body
    size = int(headers["inference-header-content-length"])
    doc = json.loads(body[:size])
    tail = body[size:]
    offset, arrays = 0, {}
    for out in doc["outputs"]:
        n = out["parameters"]["binary_data_size"]
        arrays[out["name"]] = tail[offset : offset + n]
        offset += n
    assert offset == len(tail)
    probabilities = np.frombuffer(arrays["probability"], dtype="<f4")
    np.testing.assert_allclose(probabilities, [expected_probability(t, V1_BIAS) for t in TEXTS], atol=1e-6)
    assert arrays["label"].startswith(struct.pack("<I", len("positive")) + b"positive")


@pytest.mark.parametrize(
    ("doc", "status", "words"),
    [
        ({"inputs": [_text_input(["good"], datatype="FP32")]}, 400, "datatype FP32"),
        ({"inputs": [_text_input(["good"], datatype="COMPLEX")]}, 400, "unsupported datatype"),
        ({"inputs": [_text_input(["good", "bad"], shape=[3])]}, 400, "needs 3 elements"),
        ({"inputs": [_text_input(["good"], shape=[1, -1])]}, 400, "non-negative"),
        ({"inputs": [_text_input(["good"], data=[3])]}, 400, "not a valid BYTES"),
        ({"inputs": [_text_input(["  "])]}, 400, "empty"),
        ({"inputs": [_text_input(["good"], name="words")]}, 400, "words"),
        ({"inputs": [_text_input(["good"]), _text_input(["bad"])]}, 400, "more than once"),
        ({"inputs": [_text_input(["good"])], "outputs": [{"name": "logits"}]}, 400, "logits"),
        ({"inputs": [_text_input(["good"])], "parameters": {"signature_name": "nope"}}, 400, "nope"),
        ({"inputs": [_text_input(["good"])], "parameters": {"signature_name": 3}}, 400, "string"),
        ({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1]}]}, 400, "no 'data'"),
        ({"inputs": {"text": ["good"]}}, 400, "'inputs'"),
        ({"id": 5, "inputs": [_text_input(["good"])]}, 400, "'id'"),
        ([1, 2], 400, "JSON object"),
        ("{not json", 400, "JSON Parse error"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_clear_message(rest: RestClient, doc: Any, status: int, words: str) -> None:
    got, body = _infer(rest, doc if not isinstance(doc, list) else json.dumps(doc))
    assert (got, words in body["error"]) == (status, True), body


def test_unknown_model_version_and_method(rest: RestClient) -> None:
    doc = {"inputs": [_text_input(["good"])]}
    assert _infer(rest, doc, "/v2/models/nope/infer")[0] == 404
    assert _infer(rest, doc, f"/v2/models/{MODEL}/versions/9/infer")[0] == 404
    assert _infer(rest, doc, f"/v2/models/{MODEL}/versions/99999999999999999999/infer")[0] == 400
    assert call_json(rest, "GET", INFER)[0] == 405
    assert call_json(rest, "POST", "/v2/health/live", b"")[0] == 405


def test_bad_binary_data_gets_a_400(rest: RestClient) -> None:
    head = json.dumps(
        {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": 9}}]}
    ).encode()
    cases = [
        (head + _bytes_elements([b"good"]), str(len(head))),  # 8 bytes where 9 are claimed
        (head + struct.pack("<I", 100) + b"good!", str(len(head))),  # an element longer than the data
        (head + _bytes_elements([b"good", b"x"]) + b"??", str(len(head))),  # bytes no input claims
        (head, "99999"),  # header length beyond the body
        (head, "-1"),
        (head, "\u00b2"),  # not ASCII
    ]
    for body, length in cases:
        status, _, data = rest.request("POST", INFER, body, {"Inference-Header-Content-Length": length})
        assert status == 400 and set(json.loads(data)) == {"error"}, (length, data)


def test_v2_calls_are_counted_like_v1_calls(rest: RestClient) -> None:
    def count() -> float:
        samples = metric_samples(rest.metrics_text(), "model_server_requests_total")
        key = (("code", "OK"), ("method", "modelinfer"), ("model", MODEL), ("protocol", "rest"))
        return samples.get(key, 0.0)

    before = count()
    assert _infer(rest, {"inputs": [_text_input(["good"])]})[0] == 200
    assert count() == before + 1


def test_tritonclient_http_scores_like_tf_servings_api(shared_server: ServerProcess) -> None:
    try:
        import tritonclient.http as httpclient
    except (ImportError, RuntimeError):  # RuntimeError: tritonclient's own "no http support" (no gevent wheel)
        pytest.skip("tritonclient.http needs geventhttpclient, which has no wheel on this stack (3.13)")
    client = httpclient.InferenceServerClient(shared_server.rest_url.removeprefix("http://"))
    try:
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(MODEL)
        assert client.get_model_metadata(MODEL)["inputs"][0]["datatype"] == "BYTES"
        text = httpclient.InferInput("text", [len(TEXTS)], "BYTES")
        text.set_data_from_numpy(np.array([t.encode() for t in TEXTS], dtype=object))
        result = client.infer(MODEL, [text], request_id="t-1")
        assert result.get_response()["id"] == "t-1"
        v2 = result.as_numpy("probability")
    finally:
        client.close()
    with shared_server.rest_client() as rest:
        v1 = [row["probability"] for row in rest.predict_texts(MODEL, TEXTS, input_name="text")]
    np.testing.assert_allclose(v2, v1, atol=1e-6, rtol=0)


def test_not_ready_until_a_version_loads(spawn: Any, tmp_path: Path, toy_models: dict[str, str]) -> None:
    """A configured model without a version yet: live, but server and model not ready (503 / ready=false), and
    ready once a version is published."""
    import tritonclient.grpc as grpcclient

    base = tmp_path / MODEL
    base.mkdir()
    server = spawn(model_name=MODEL, model_base_path=str(base), extra_args=["--file_system_poll_wait_seconds=0.2"])
    triton = grpcclient.InferenceServerClient(server.grpc_target)
    try:
        with server.rest_client() as rest:
            assert call_json(rest, "GET", "/v2/health/live") == (200, {"live": True})
            assert call_json(rest, "GET", "/v2/health/ready")[0] == 503
            assert call_json(rest, "GET", f"/v2/models/{MODEL}/ready")[0] == 503
            assert call_json(rest, "GET", f"/v2/models/{MODEL}")[0] == 404
            assert triton.is_server_live() and not triton.is_server_ready() and not triton.is_model_ready(MODEL)
            copy_version(toy_models["v1"], base, 1)
            server.wait_for_model(MODEL, timeout=120)
            assert call_json(rest, "GET", "/v2/health/ready") == (200, {"ready": True})
            assert triton.is_server_ready() and triton.is_model_ready(MODEL, "1")
    finally:
        triton.close()
