"""``--monitoring_config_file``: TF Serving's MonitoringConfig puts Prometheus at its configured path on the REST
port (beside ``/metrics``); ``enable: false`` turns TF Serving's path off; a bad file stops the start."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from model_server.config import parse_args
from model_server.model_config import ConfigError
from model_server.process import ServerProcess
from model_server.server import metrics_paths
from model_server.text_protos import DEFAULT_PROMETHEUS_PATH
from tests.model_server.ms_helpers import MODEL, copy_version


def _prometheus_path(tmp_path: Path, text: str | None) -> str | None:
    flags = [f"--model_base_path={tmp_path}"]
    if text is not None:
        config = tmp_path / "monitoring.config"
        config.write_text(text)
        flags.append(f"--monitoring_config_file={config}")
    o = parse_args(flags)
    assert "monitoring_config_file" not in o.not_applied_flags
    return o.prometheus_path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, DEFAULT_PROMETHEUS_PATH),  # no file: TF Serving's path is served as well (as before this flag)
        ('prometheus_config { enable: true, path: "/my/metrics" }\n', "/my/metrics"),
        ("# defaults\nprometheus_config { enable: true }\n", DEFAULT_PROMETHEUS_PATH),
        ('prometheus_config { enable: false, path: "/my/metrics" }\n', None),
        ("", None),  # an empty MonitoringConfig: Prometheus export off, as in TF Serving
    ],
    ids=["no file", "custom path", "default path", "disabled", "empty file"],
)
def test_config_chooses_the_prometheus_path(tmp_path: Path, text: str | None, expected: str | None) -> None:
    assert _prometheus_path(tmp_path, text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "prometheus_config { enable: true, port: 9 }",
            "Error parsing text-format tensorflow.serving.MonitoringConfig",
        ),
        ("prometheus_config { enable: maybe }", "Error parsing text-format tensorflow.serving.MonitoringConfig"),
        ('prometheus_config { enable: true, path: "metrics" }', "must start with '/'"),
        ('prometheus_config { enable: true, path: "/v1/models/x" }', "would hide a REST API route"),
        ('prometheus_config { enable: true, path: "/healthz" }', "would hide a REST API route"),
    ],
)
def test_bad_configs_are_start_up_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _prometheus_path(tmp_path, text)


def test_unreadable_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read --monitoring_config_file"):
        parse_args([f"--model_base_path={tmp_path}", f"--monitoring_config_file={tmp_path / 'nope'}"])


def test_metrics_paths() -> None:
    assert metrics_paths(DEFAULT_PROMETHEUS_PATH) == ("/metrics", DEFAULT_PROMETHEUS_PATH)
    assert metrics_paths("/my/metrics") == ("/metrics", "/my/metrics")
    assert metrics_paths("/metrics") == ("/metrics",)
    assert metrics_paths(None) == ("/metrics",)


def test_a_server_serves_prometheus_at_the_configured_path(
    spawn: Callable[..., ServerProcess], toy_models: dict[str, str], tmp_path: Path
) -> None:
    base = tmp_path / "models" / MODEL
    copy_version(toy_models["v1"], base, 1)
    config = tmp_path / "monitoring.config"
    config.write_text('prometheus_config {\n  enable: true\n  path: "/monitoring/custom"\n}\n')
    server = spawn(
        model_name=MODEL, model_base_path=str(base), extra_args=[f"--monitoring_config_file={config}"], grpc=False
    )
    server.wait_for_model(MODEL, timeout=180)
    with server.rest_client() as rest:
        rest.predict_texts(MODEL, ["great"], input_name="text")
        status, headers, body = rest.request("GET", "/monitoring/custom")
        assert status == 200 and headers["content-type"].startswith("text/plain")
        text = body.decode()
        assert 'model_server_requests_total{code="OK",method="predict",model="sentiment",protocol="rest"} 1.0' in text
        assert ':tensorflow:serving:request_count{model_name="sentiment",status="OK"} 1' in text  # TF Serving's
        assert rest.request("GET", "/metrics")[0] == 200
        assert rest.request("GET", "/monitoring/custom?x=1")[0] == 200  # the query string is not part of the path
        assert rest.request("GET", DEFAULT_PROMETHEUS_PATH)[0] == 404  # only the configured path, as TF Serving
        assert rest.request("GET", "/monitoring/custom/")[0] == 404


def test_tf_serving_request_series_are_derived_from_ours() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from model_server.metrics import Metrics

    m = Metrics()
    for protocol, method, code, seconds in [
        ("rest", "predict", "OK", 0.002),
        ("rest", "predict", "OK", 0.2),
        ("grpc", "predict", "INVALID_ARGUMENT", 0.001),
        ("grpc", "classify", "OK", 0.003),
        ("rest", "status", "OK", 0.001),  # not one of TF Serving's prediction APIs
    ]:
        m.requests.labels(protocol, "m", method, code).inc()
        m.request_latency.labels(protocol, "m", method).observe(seconds)
    text = m.tf_serving_text()
    assert ':tensorflow:serving:request_count{model_name="m",status="OK"} 3' in text
    assert ':tensorflow:serving:request_count{model_name="m",status="INVALID_ARGUMENT"} 1' in text
    rest = 'model_name="m",API="Predict",entrypoint="REST"'
    assert f':tensorflow:serving:request_latency_bucket{{{rest},le="2500"}} 1' in text  # 2.5 ms, in microseconds
    assert f':tensorflow:serving:request_latency_bucket{{{rest},le="+Inf"}} 2' in text
    assert f":tensorflow:serving:request_latency_sum{{{rest}}} 202000" in text
    assert 'API="Classify",entrypoint="GRPC"' in text and 'API="status"' not in text  # 3 above: status not counted
    body, _ = m.render()
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}  # the whole page parses
    assert ":tensorflow:serving:request_latency" in families and "model_server_requests" in families
