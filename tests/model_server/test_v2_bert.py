"""A real exported BERT model scores the same over the Open Inference Protocol (REST and gRPC, Triton clients and
plain HTTP) as over TF Serving's API, within 1e-6.

The model is the cross-stack test's: a small BERT built through the product's own code paths (a Hugging Face
checkpoint with the real vocabulary, ``resolve_encoder``, a real Transform graph, ``build_model``,
``export_serving_model``), so its ``serving_default`` takes the review text as a string (V2 ``BYTES``) and tokenizes
it in the graph, as the pushed model does. Slow (about two minutes): the Transform graph and the export.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.model_server.ms_helpers import call_json

# The cross-stack test's fixtures (pytest uses fixtures imported into a module) and its fixed head weights.
from tests.pipeline_modules.trainer.test_cross_stack_scores import (  # noqa: F401
    head_weights,
    smoke_config,
    tiny_encoder,
    transform_output,
)

pytestmark = pytest.mark.slow

MODEL = "bert_imdb"
REVIEWS = [
    "An absolute triumph: moving, funny and beautifully acted. I loved every minute.",
    "Dreadful. The plot makes no sense and the acting is wooden; a waste of two hours.",
    "Café culture, naïve heroes and a <br /><br />twist ending.",
    " ".join(["A long and winding review that goes on about the film for a while."] * 30),
]


@pytest.fixture(scope="module")
def bert_base_path(
    tmp_path_factory: pytest.TempPathFactory,
    smoke_config: Any,  # noqa: F811
    tiny_encoder: Any,  # noqa: F811
    transform_output: Any,  # noqa: F811
) -> Path:
    from pipeline_modules.trainer.export import export_serving_model
    from pipeline_modules.trainer.model import build_model

    model = build_model(tiny_encoder.path, pooling="mean", dropout=smoke_config.dropout)
    head = model.get_layer("logit")
    kernel, bias = head_weights(tiny_encoder.hidden_size)
    head.kernel.assign(kernel)
    head.bias.assign(bias)
    base = tmp_path_factory.mktemp("v2_bert") / MODEL
    export_serving_model(model, transform_output, smoke_config.serving_length_buckets, str(base / "1"))
    return base


def test_v2_rest_and_grpc_score_the_bert_model_like_tf_servings_api(spawn: Any, bert_base_path: Path) -> None:
    import tritonclient.grpc as grpcclient

    server = spawn(model_name=MODEL, model_base_path=str(bert_base_path), extra_args=["--enable_batching"])
    server.wait_for_model(MODEL, timeout=300)
    scores: dict[str, np.ndarray] = {}
    with server.rest_client(timeout=120) as rest:
        rows = rest.predict_texts(MODEL, REVIEWS, input_name="text")
        scores["tf_serving_rest"] = np.array([row["probability"] for row in rows], np.float32).ravel()
        _, meta = call_json(rest, "GET", f"/v2/models/{MODEL}")
        assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
        doc = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(REVIEWS)], "data": REVIEWS}]}
        status, answer = call_json(rest, "POST", f"/v2/models/{MODEL}/infer", json.dumps(doc))
        assert status == 200, answer
        (probability,) = [o for o in answer["outputs"] if o["name"] == "probability"]
        scores["v2_rest_json"] = np.array(probability["data"], np.float32).reshape(probability["shape"]).ravel()
    with server.grpc_client(timeout=120) as client:
        rows = client.predict_texts(MODEL, REVIEWS, input_name="text")
        scores["tf_serving_grpc"] = np.array([row["probability"] for row in rows], np.float32).ravel()
    texts = np.array([r.encode() for r in REVIEWS], dtype=object)
    triton = grpcclient.InferenceServerClient(server.grpc_target)
    try:
        text = grpcclient.InferInput("text", [len(REVIEWS)], "BYTES")
        text.set_data_from_numpy(texts)
        scores["v2_grpc_tritonclient"] = triton.infer(MODEL, [text]).as_numpy("probability").ravel()
    finally:
        triton.close()
    try:
        import tritonclient.http as httpclient
    except (ImportError, RuntimeError):  # no geventhttpclient wheel on this stack: plain HTTP above covers V2 REST
        httpclient = None
    if httpclient is not None:
        http = httpclient.InferenceServerClient(server.rest_url.removeprefix("http://"), network_timeout=120)
        try:
            text = httpclient.InferInput("text", [len(REVIEWS)], "BYTES")
            text.set_data_from_numpy(texts)
            scores["v2_rest_tritonclient"] = http.infer(MODEL, [text]).as_numpy("probability").ravel()
        finally:
            http.close()
    reference = scores.pop("tf_serving_rest")
    assert reference.shape == (len(REVIEWS),) and len(set(np.round(reference, 4))) > 1  # a real spread of scores
    for path, values in scores.items():
        np.testing.assert_allclose(values, reference, atol=1e-6, rtol=0, err_msg=path)
