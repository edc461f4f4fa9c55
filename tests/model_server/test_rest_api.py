"""TF Serving's REST API against the real server process: formats, status, metadata, and every bad input."""

from __future__ import annotations

import json

import pytest

from model_server.client import RestClient
from tests.model_server.ms_helpers import MODEL, V1_BIAS, b64, call_json, expected_probability, serialized_example

PREDICT = f"/v1/models/{MODEL}:predict"


def _p(text: str) -> float:
    return pytest.approx(expected_probability(text, V1_BIAS), abs=1e-6)


# --- happy paths -----------------------------------------------------------------------------------------------------


def test_row_format_with_bare_strings(rest: RestClient) -> None:
    texts = ["A great film, I loved it!", "Boring and awful.", "It exists."]
    status, doc = call_json(rest, "POST", PREDICT, {"instances": texts})
    assert status == 200
    assert doc == {
        "predictions": [
            {"probability": _p(texts[0]), "label": "positive"},
            {"probability": _p(texts[1]), "label": "negative"},
            {"probability": _p(texts[2]), "label": "positive"},
        ]
    }


def test_row_format_with_named_inputs_and_b64(rest: RestClient) -> None:
    status, doc = call_json(
        rest,
        "POST",
        PREDICT,
        {
            "instances": [
                {"text": "wonderful"},
                {"text": {"b64": b64(b"terrible")}},
            ]
        },
    )
    assert status == 200
    assert [p["label"] for p in doc["predictions"]] == ["positive", "negative"]


def test_columnar_format(rest: RestClient) -> None:
    status, doc = call_json(rest, "POST", PREDICT, {"inputs": {"text": ["superb", "poor"]}})
    assert status == 200
    assert doc == {"outputs": {"probability": [_p("superb"), _p("poor")], "label": ["positive", "negative"]}}
    status, doc = call_json(rest, "POST", PREDICT, {"inputs": ["superb"]})  # one input: the bare value
    assert status == 200 and doc["outputs"]["label"] == ["positive"]


def test_from_examples_signature(rest: RestClient) -> None:
    bare = [{"b64": b64(serialized_example("the best, brilliant"))}, {"b64": b64(serialized_example("the worst"))}]
    named = [{"examples": value} for value in bare]
    for instances in (bare, named):
        status, doc = call_json(rest, "POST", PREDICT, {"signature_name": "from_examples", "instances": instances})
        assert status == 200
        assert doc["predictions"] == [
            {"probability": _p("the best, brilliant"), "label": "positive"},
            {"probability": _p("the worst"), "label": "negative"},
        ]


def test_versions_paths_are_case_insensitive_and_names_url_decoded(rest: RestClient) -> None:
    for path in (
        f"/v1/models/{MODEL}/versions/1:predict",
        f"/V1/MODELS/{MODEL}:PREDICT",
        "/v1/models/%73entiment:predict",
    ):
        status, doc = call_json(rest, "POST", path, {"instances": ["great"]})
        assert status == 200, path


def test_model_status(rest: RestClient) -> None:
    expected = {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    assert call_json(rest, "GET", f"/v1/models/{MODEL}") == (200, expected)
    assert call_json(rest, "GET", f"/v1/models/{MODEL}/versions/1") == (200, expected)


def test_model_metadata(rest: RestClient) -> None:
    status, doc = call_json(rest, "GET", f"/v1/models/{MODEL}/metadata")
    assert status == 200
    assert doc["model_spec"] == {"name": MODEL, "signature_name": "", "version": "1"}
    sigs = doc["metadata"]["signature_def"]["signature_def"]
    serving = sigs["serving_default"]
    assert serving["method_name"] == "tensorflow/serving/predict"
    assert serving["inputs"]["text"]["dtype"] == "DT_STRING"
    assert serving["inputs"]["text"]["tensor_shape"]["dim"] == [{"size": "-1", "name": ""}]
    assert {k: v["dtype"] for k, v in serving["outputs"].items()} == {"probability": "DT_FLOAT", "label": "DT_STRING"}
    assert list(sigs["from_examples"]["inputs"]) == ["examples"]
    assert call_json(rest, "GET", f"/v1/models/{MODEL}/versions/1/metadata")[0] == 200


def test_health_and_readiness(rest: RestClient) -> None:
    assert call_json(rest, "GET", "/healthz") == (200, {"status": "alive"})
    assert call_json(rest, "GET", "/readyz") == (200, {"status": "ready", "models": {MODEL: ["1"]}})


def test_request_id_is_echoed_or_generated(rest: RestClient) -> None:
    _, headers, _ = rest.request("GET", "/healthz", headers={"X-Request-Id": "trace-42"})
    assert headers["x-request-id"] == "trace-42"
    _, headers, _ = rest.request("GET", "/healthz", headers={"X-Request-Id": "bad id\u00e9"})
    assert headers["x-request-id"] != "bad id" and len(headers["x-request-id"]) == 16


# --- errors ----------------------------------------------------------------------------------------------------------

BAD_REQUESTS = [
    # (method, path, body, status, exact message or "~substring")
    ("POST", PREDICT, b"", 400, "JSON Parse error: The document is empty"),
    ("POST", PREDICT, b"   \n", 400, "JSON Parse error: The document is empty"),
    ("POST", PREDICT, b'{"instances": ["a"', 400, "~JSON Parse error: Expecting"),
    ("POST", PREDICT, b"\xff\xfe\x00{", 400, "~JSON Parse error: Invalid encoding"),
    (
        "POST",
        PREDICT,
        '{"instances": ["caf\u00e9 \udc80"]}'.encode("utf-8", "surrogatepass"),
        400,
        "~JSON Parse error: Invalid encoding",
    ),
    ("POST", PREDICT, b'{"instances": ["\\ud800"]}', 400, "~unpaired surrogate"),
    ("POST", PREDICT, b"[1, 2]", 400, "Request body must be a JSON object, got Array"),
    ("POST", PREDICT, b'"text"', 400, "Request body must be a JSON object, got String"),
    (
        "POST",
        PREDICT,
        {"instances": ["a"], "inputs": ["a"]},
        400,
        "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist",
    ),
    ("POST", PREDICT, {"signature_name": "serving_default"}, 400, "Missing 'inputs' or 'instances' key"),
    ("POST", PREDICT, {"instances": "great"}, 400, "Expecting 'instances' to be an list/array, got String"),
    ("POST", PREDICT, {"instances": [1]}, 400, "JSON Value: 1 Type: Number is not of expected type: string"),
    ("POST", PREDICT, {"instances": [None]}, 400, "JSON Value: null Type: Null is not of expected type: string"),
    ("POST", PREDICT, {"instances": [True]}, 400, "JSON Value: true Type: True is not of expected type: string"),
    ("POST", PREDICT, {"instances": [["a"], ["a", "b"]]}, 400, "~rectangular"),
    (
        "POST",
        PREDICT,
        {"instances": [["a"]]},
        400,
        "input must be a vector, got shape: [1,1]",  # the graph's own error, as TF Serving passes it on
    ),
    ("POST", PREDICT, {"instances": [{"b64": "not base64!"}]}, 400, '~Unable to base64 decode: "not base64!"'),
    ("POST", PREDICT, {"instances": [{"b64": 5}]}, 400, "'b64' value must be a string, got Number"),
    (
        "POST",
        PREDICT,
        {"instances": [{"txt": "a"}]},
        400,
        "Failed to process element: 0 of 'instances' list. JSON object keys do not match the signature inputs. "
        "Send extra: {txt}. Missing but required: {text}.",
    ),
    (
        "POST",
        PREDICT,
        {"instances": [{"text": "a", "extra": "b"}]},
        400,
        "~Send extra: {extra}. Missing but required: {}.",
    ),
    (
        "POST",
        PREDICT,
        {"instances": ["a", {"text": "b"}]},
        400,
        "Instances must be all bare values or all objects keyed by input name",
    ),
    (
        "POST",
        PREDICT,
        {"inputs": {"text": ["a"], "extra": [1]}},
        400,
        "'inputs' keys do not match the signature inputs. Send extra: {extra}. Missing but required: {}.",
    ),
    ("POST", PREDICT, {"inputs": {"txt": ["a"]}}, 400, "~Missing but required: {text}"),
    ("POST", PREDICT, {"instances": []}, 400, "The request has an empty batch: 'instances' is an empty list"),
    ("POST", PREDICT, {"inputs": {"text": []}}, 400, "The request has an empty batch: send at least one instance"),
    (
        "POST",
        PREDICT,
        {"inputs": "great"},
        400,
        "Batching session Run() input tensors must have at least one dimension",  # TF Serving's batching words
    ),
    (
        "POST",
        PREDICT,
        {"instances": ["fine", ""]},
        400,
        "Input 'text' instance 1 is empty or whitespace-only: send the text to classify",
    ),
    (
        "POST",
        PREDICT,
        {"instances": [" \t\n "]},
        400,
        "Input 'text' instance 0 is empty or whitespace-only: send the text to classify",
    ),
    (
        "POST",
        PREDICT,
        {"instances": [{"b64": b64(b"\xff\xfe bad")}]},
        400,
        "Input 'text' instance 0 is not valid UTF-8",
    ),
    (
        "POST",
        PREDICT,
        {"instances": ["x"] * 65},
        400,
        "The request has 65 instances, more than the limit of 64 (--max_instances_per_request); split it into "
        "smaller requests",
    ),
    (
        "POST",
        PREDICT,
        {"instances": ["a"], "signature_name": "nope"},
        400,
        'Serving signature name: "nope" not found in signature def',
    ),
    ("POST", PREDICT, {"instances": ["a"], "signature_name": 7}, 400, "'signature_name' must be a string, got Number"),
    (
        "POST",
        PREDICT,
        {"signature_name": "from_examples", "instances": [{"b64": b64(b"\x0a\x05junk")}]},
        400,
        "Could not parse example input",
    ),
    ("POST", PREDICT, b"[" * 5000 + b"]" * 5000, 400, "~nested"),
    (
        "POST",
        PREDICT,
        {"inputs": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["a"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]},
        400,
        "Tensor value is nested deeper than 32 levels",
    ),
    ("POST", "/v1/models/nope:predict", {"instances": ["a"]}, 404, "Servable not found for request: Latest(nope)"),
    (
        "POST",
        f"/v1/models/{MODEL}/versions/9:predict",
        {"instances": ["a"]},
        404,
        f"Servable not found for request: Specific({MODEL}, 9)",
    ),
    (
        "POST",
        f"/v1/models/{MODEL}/labels/beta:predict",
        {"instances": ["a"]},
        400,
        "Unrecognized servable version label: beta",
    ),
    (
        "POST",
        f"/v1/models/{MODEL}/versions/99999999999999999999:predict",
        {"instances": ["a"]},
        400,
        "Failed to convert version: 99999999999999999999 to numeric.",
    ),
    ("GET", "/v1/models/nope", None, 404, "Could not find any versions of model nope"),
    ("GET", f"/v1/models/{MODEL}/versions/9", None, 404, f"Could not find version 9 of model {MODEL}"),
    ("GET", "/v1/models/nope/metadata", None, 404, "Servable not found for request: Latest(nope)"),
    ("GET", f"/v1/models/{MODEL}/labels/beta", None, 400, "Unrecognized servable version label: beta"),
    ("GET", "/v1/models", None, 400, "Missing model name in request."),
    ("GET", PREDICT, None, 400, f"Malformed request: GET {PREDICT}"),
    ("POST", f"/v1/models/{MODEL}", {}, 400, f"Malformed request: POST /v1/models/{MODEL}"),
    ("DELETE", f"/v1/models/{MODEL}", None, 400, f"Malformed request: DELETE /v1/models/{MODEL}"),
    ("GET", "/v1/models/a/b/c", None, 400, "Malformed request: GET /v1/models/a/b/c"),
    ("GET", "/v3/models/x", None, 404, "Not found: GET /v3/models/x"),
    ("GET", "/v2/models/x", None, 404, "Servable not found for request: Latest(x)"),
    (
        "POST",
        f"/v1/models/{MODEL}:classify",
        {"examples": [{"review": "x"}]},
        400,
        "~No classification inputs found in SignatureDef: ",  # serving_default is a predict signature
    ),
    # TF Serving parses a classify/regress body before it looks the servable up.
    ("POST", f"/v1/models/{MODEL}:regress", {"examples": []}, 400, "~'examples' value is an empty array"),
    ("POST", "/v1/models/nope:classify", {"examples": []}, 400, "~'examples' value is an empty array"),
    ("POST", "/v1/models/nope:classify", {"examples": [{}]}, 404, "Servable not found for request: Latest(nope)"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    BAD_REQUESTS,
    ids=[f"{i}-{r[3]}" for i, r in enumerate(BAD_REQUESTS)],
)
def test_bad_requests_get_a_clear_error(rest: RestClient, method, path, body, status, message) -> None:
    got_status, doc = call_json(rest, method, path, body)
    assert got_status == status, doc
    if message.startswith("~"):
        assert message[1:] in doc["error"]
    else:
        assert doc["error"] == message


def test_a_body_over_the_limit_is_refused_with_413(rest: RestClient) -> None:
    body = json.dumps({"instances": ["great " * 20_000]})  # 120 kB > --max_request_bytes=65536
    status, doc = call_json(rest, "POST", PREDICT, body)
    assert status == 413
    assert doc["error"].endswith("exceeds the limit of 65536 bytes (--max_request_bytes)")


def test_a_chunked_body_over_the_limit_is_refused_too(shared_server) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", shared_server.rest_port, timeout=30)
    chunks = (b'{"instances": ["' + b"x" * 10_000 + b'"]}' for _ in range(10))
    conn.request("POST", PREDICT, body=chunks, encode_chunked=True, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    doc = json.loads(response.read())
    conn.close()
    assert response.status == 413 and "--max_request_bytes" in doc["error"]


def test_the_server_keeps_serving_after_bad_input(rest: RestClient) -> None:
    for _, path, body, _, _ in BAD_REQUESTS[:10]:
        call_json(rest, "POST", path, body)
    status, doc = call_json(rest, "POST", PREDICT, {"instances": ["great"]})
    assert status == 200 and doc["predictions"][0]["label"] == "positive"
