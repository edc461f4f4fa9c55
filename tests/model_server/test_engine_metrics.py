"""The engine series (model_server/metrics.py): one per available version and signature, replaced as versions come
and go, so a dashboard shows which engine answers what."""

from __future__ import annotations

from model_server.metrics import Metrics
from tests.model_server.ms_helpers import metric_samples

ENGINE, ROWS = "model_server_signature_engine", "model_server_engine_max_batch_rows"


def _page(metrics: Metrics) -> str:
    return metrics.render()[0].decode()


def test_engine_series_follow_the_available_versions() -> None:
    metrics = Metrics()
    metrics.set_engines("m", {1: {"serving_default": ("onnxruntime", 16), "tokenize": ("tensorflow", 0)}})
    metrics.set_engines("other", {7: {"serving_default": ("tensorflow", 0)}})
    page = _page(metrics)
    assert metric_samples(page, ENGINE) == {
        (("engine", "onnxruntime"), ("model", "m"), ("signature", "serving_default"), ("version", "1")): 1.0,
        (("engine", "tensorflow"), ("model", "m"), ("signature", "tokenize"), ("version", "1")): 1.0,
        (("engine", "tensorflow"), ("model", "other"), ("signature", "serving_default"), ("version", "7")): 1.0,
    }
    assert metric_samples(page, ROWS)[(("model", "m"), ("signature", "serving_default"), ("version", "1"))] == 16

    # version 2 replaces version 1: its series go, version 2's come; the other model is untouched
    metrics.set_engines("m", {2: {"serving_default": ("onnxruntime_int8", 0)}})
    page = _page(metrics)
    assert {(dict(k)["model"], dict(k)["version"], dict(k)["engine"]) for k in metric_samples(page, ENGINE)} == {
        ("m", "2", "onnxruntime_int8"),
        ("other", "7", "tensorflow"),
    }
    assert set(metric_samples(page, ROWS)) == {
        (("model", "m"), ("signature", "serving_default"), ("version", "2")),
        (("model", "other"), ("signature", "serving_default"), ("version", "7")),
    }

    metrics.set_engines("m", {})  # unloaded or removed by a config reload
    assert {dict(k)["model"] for k in metric_samples(_page(metrics), ENGINE)} == {"other"}
