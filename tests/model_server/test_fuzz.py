"""Property-based fuzzing of the REST API: arbitrary paths, methods, JSON documents and bytes never get a 5xx,
always get JSON (``{"error": ...}`` when refused), and never take the server down.

Bounded in count and derandomized (the same examples on every run), so the test is deterministic.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from model_server.client import RestClient
from tests.model_server.ms_helpers import MODEL

SETTINGS = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

names = st.sampled_from([MODEL, "nope", "", "a:b", "%2F", "..", "\u00e9", "x" * 300])
segments = st.text(min_size=0, max_size=12).map(lambda s: quote(s, safe=""))
suffixes = st.sampled_from(["", ":predict", ":classify", ":regress", ":PREDICT", "/metadata", ":", ":predict/x"])
versions = st.one_of(st.none(), st.integers(-5, 2**70).map(str), st.sampled_from(["1", "01", "abc", ""]))
labels = st.one_of(st.none(), st.sampled_from(["stable", "", "x/y"]), segments)


@st.composite
def paths(draw) -> str:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return "/" + "/".join(draw(st.lists(segments, max_size=5)))
    name = quote(draw(names), safe="")
    path = f"/{draw(st.sampled_from(['v1', 'V1', 'v2']))}/models"
    if draw(st.booleans()):
        path += f"/{name}"
        version, label = draw(versions), draw(labels)
        if version is not None:
            path += f"/versions/{version}"
        elif label is not None:
            path += f"/labels/{label}"
    return path + draw(suffixes)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**80), 2**80) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["instances", "inputs", "signature_name", "text", "examples", "b64", "x"])
            | st.text(max_size=5),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


texts = st.one_of(
    st.sampled_from(["A great film.", "awful", "ok", "Ünïcödé ☃ 😀", "x" * 2000]),
    st.text(min_size=1, max_size=40),
    st.just(""),
)
b64_values = st.one_of(
    texts.map(lambda t: base64.b64encode(t.encode("utf-8", "surrogatepass")).decode()),
    st.binary(max_size=30).map(lambda b: base64.b64encode(b).decode()),
    st.text(max_size=12),
)
string_values = texts | st.fixed_dictionaries({"b64": b64_values})


@st.composite
def predict_documents(draw) -> dict:
    """Documents near the valid shape (most of them valid), where the interesting bugs are."""
    doc = {}
    key = draw(st.sampled_from(["instances", "instances", "instances", "inputs", "inputs", "both", "neither"]))
    value = draw(
        st.one_of(
            st.lists(string_values, min_size=1, max_size=5),
            st.lists(st.fixed_dictionaries({"text": string_values}), min_size=1, max_size=3),
            st.fixed_dictionaries({"text": st.lists(string_values, max_size=4)}),
            st.lists(string_values | json_values, max_size=5),
            st.dictionaries(st.sampled_from(["text", "examples", "y"]), json_values, max_size=3),
            json_values,
        )
    )
    if key in ("instances", "both"):
        doc["instances"] = value
    if key in ("inputs", "both"):
        doc["inputs"] = value
    signature = draw(st.sampled_from([None, None, None, "serving_default", "from_examples", "", "nope", 3]))
    if signature is not None:
        doc["signature_name"] = signature
    return doc


bodies = st.one_of(
    predict_documents().map(lambda d: json.dumps(d).encode()),
    predict_documents().map(lambda d: json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.text(max_size=100).map(lambda s: s.encode("utf-8", "surrogatepass")),
)


def _check(client: RestClient, method: str, path: str, body: bytes | None) -> None:
    status, headers, data = client.request(method, path, body)
    assert status < 500, (method, path, body, status, data)
    if path.rstrip("/") in ("/metrics", "/monitoring/prometheus/metrics"):
        return
    assert headers["content-type"].startswith("application/json"), (path, headers)
    doc = json.loads(data)
    if status >= 400:
        assert set(doc) == {"error"}, doc


@SETTINGS
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
    path=paths(),
    body=st.none() | bodies,
)
@example(method="GET", path="/%0A", body=None)  # a decoded newline once escaped the catch-all route
def test_any_request_gets_a_json_answer_and_never_a_5xx(rest: RestClient, method: str, path: str, body) -> None:
    if method == "HEAD":  # no body comes back to check; the status still must not be 5xx
        assert rest.request(method, path)[0] < 500
        return
    _check(rest, method, path, body if method != "GET" else None)


@SETTINGS
@given(body=bodies)
def test_any_predict_body_gets_a_json_answer_and_never_a_5xx(rest: RestClient, body: bytes) -> None:
    _check(rest, "POST", f"/v1/models/{MODEL}:predict", body)


def test_the_server_is_still_healthy_after_fuzzing(rest: RestClient) -> None:
    assert rest.healthz() and rest.readyz()
    assert rest.predict_texts(MODEL, ["great"], input_name="text")[0]["label"] == "positive"


# --- the Open Inference Protocol (KServe V2) routes: model_server/v2_rest.py ---------------------------------------

v2_datatypes = st.sampled_from(["BYTES", "BYTES", "BYTES", "FP32", "INT64", "BOOL", "FP16", "bytes", "", 7])
v2_shapes = st.one_of(
    st.lists(st.integers(0, 4), min_size=1, max_size=2),
    st.lists(st.integers(-3, 2**64), max_size=3),
    json_values,
)


@st.composite
def v2_paths(draw) -> str:
    tail = draw(st.sampled_from(["", "/", "/health/live", "/health/ready", "/models", "/models/", "/model", "model"]))
    if tail.startswith("/models") and draw(st.booleans()):
        tail = f"/models/{quote(draw(names), safe='')}"
        version = draw(versions | labels)
        if version is not None:
            tail += f"/versions/{version}"
        tail += draw(st.sampled_from(["", "/ready", "/infer", "/infer/", "/x", "?signature_name=nope"]))
    return "/v2" + tail


@st.composite
def v2_infer_documents(draw) -> dict:
    """Inference requests near the valid shape: the right input most of the time, wrong pieces one at a time."""
    data = st.one_of(st.lists(texts, max_size=4), st.lists(string_values | json_values, max_size=4), json_values)
    tensor = st.fixed_dictionaries(
        {"name": st.sampled_from(["text", "text", "examples", "x", ""]), "datatype": v2_datatypes, "shape": v2_shapes},
        optional={
            "data": data,
            "parameters": st.dictionaries(st.sampled_from(["binary_data_size", "x"]), json_values, max_size=2),
        },
    )
    doc: dict = {"inputs": draw(st.lists(tensor, max_size=3) | json_values)}
    if draw(st.booleans()):
        doc["outputs"] = draw(
            st.lists(st.fixed_dictionaries({"name": st.sampled_from(["probability", "label", "nope", 3])}), max_size=3)
            | json_values
        )
    if draw(st.booleans()):
        doc["parameters"] = draw(
            st.dictionaries(
                st.sampled_from(["signature_name", "binary_data_output", "x"]),
                st.sampled_from(["serving_default", "from_examples", "nope", True, False, 3]),
                max_size=2,
            )
        )
    if draw(st.booleans()):
        doc["id"] = draw(st.text(max_size=8) | json_values)
    return doc


v2_bodies = st.one_of(
    v2_infer_documents().map(lambda d: json.dumps(d).encode()),
    v2_infer_documents().map(lambda d: json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
)


def _check_v2(client: RestClient, method: str, path: str, body: bytes | None, headers: dict | None = None) -> None:
    status, response_headers, data = client.request(method, path, body, headers)
    assert status < 500, (method, path, body, status, data)
    if method == "HEAD":
        return
    if "inference-header-content-length" in response_headers:  # binary outputs, asked for by the body
        assert status == 200, data
        data = data[: int(response_headers["inference-header-content-length"])]
    else:
        assert response_headers["content-type"].startswith("application/json"), (path, response_headers)
    doc = json.loads(data)
    if status >= 400:
        assert set(doc) == {"error"}, doc


@SETTINGS
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD"]), path=v2_paths(), body=st.none() | v2_bodies)
def test_any_v2_request_gets_a_json_answer_and_never_a_5xx(rest: RestClient, method: str, path: str, body) -> None:
    _check_v2(rest, method, path, body if method not in ("GET", "HEAD") else None)


@SETTINGS
@given(body=v2_bodies, header=st.none() | st.integers(-2, 400).map(str) | st.sampled_from(["", "x", "1e3"]))
def test_any_v2_infer_body_gets_a_json_answer_and_never_a_5xx(rest: RestClient, body: bytes, header) -> None:
    headers = {"Inference-Header-Content-Length": header} if header is not None else None
    _check_v2(rest, "POST", f"/v2/models/{MODEL}/infer", body, headers)


def test_the_server_still_answers_v2_after_fuzzing(rest: RestClient) -> None:
    doc = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["great"]}]}
    status, _, data = rest.request("POST", f"/v2/models/{MODEL}/infer", json.dumps(doc).encode())
    assert status == 200 and json.loads(data)["outputs"][0]["data"] == ["positive"]


# --- :classify / :regress (tf.Example bodies) ----------------------------------------------------------------------

feature_values = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    string_values,
    st.lists(st.integers(-5, 5) | st.floats(-1, 1) | texts, max_size=4),
    json_values,
)
example_objects = st.dictionaries(
    st.sampled_from(["review", "x", "label", "b64", ""]) | st.text(max_size=6), feature_values, max_size=4
)


@st.composite
def example_documents(draw) -> dict:
    """`{"signature_name", "context", "examples"}` bodies, mostly well formed, some not."""
    doc: dict = {}
    if draw(st.booleans()):
        doc["context"] = draw(example_objects | json_values)
    examples = draw(st.one_of(st.lists(example_objects, max_size=4), st.lists(json_values, max_size=3), json_values))
    if draw(st.integers(0, 5)):
        doc["examples"] = examples
    signature = draw(st.sampled_from([None, "serving_default", "from_examples", "classify", "", "nope", 3, []]))
    if signature is not None:
        doc["signature_name"] = signature
    return doc


example_bodies = st.one_of(
    example_documents().map(lambda d: json.dumps(d).encode()),
    example_documents().map(lambda d: json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    bodies,
)


@SETTINGS
@given(verb=st.sampled_from([":classify", ":regress", ":CLASSIFY", "/versions/1:regress"]), body=example_bodies)
def test_any_classify_or_regress_body_gets_a_json_answer_and_never_a_5xx(
    rest: RestClient, verb: str, body: bytes
) -> None:
    _check(rest, "POST", f"/v1/models/{MODEL}{verb}", body)
