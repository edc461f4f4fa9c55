"""Every ``tensorflow_model_server`` flag is accepted; applied ones reach ServerOptions, the rest draw one warning."""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from model_server import __version__
from model_server.__main__ import main
from model_server.config import ServerOptions, build_arg_parser, parse_args
from model_server.model_config import ConfigError
from model_server.process import ServerProcess
from model_server.server import cors_middleware, grpc_server_options
from model_server.tf_serving_flags import NOT_APPLIED, not_applied_warning, parse_grpc_channel_arguments
from tests.model_server.ms_helpers import MODEL, copy_version
from tests.model_server.tls_helpers import make_pki

# tensorflow_serving/model_servers/main.cc, in its order.
TF_SERVING_FLAGS = [
    "port",
    "grpc_socket_path",
    "rest_api_port",
    "rest_api_num_threads",
    "rest_api_timeout_in_ms",
    "rest_api_enable_cors_support",
    "enable_batching",
    "allow_version_labels_for_unavailable_models",
    "batching_parameters_file",
    "enable_per_model_batching_parameters",
    "model_config_file",
    "model_config_file_poll_wait_seconds",
    "model_name",
    "model_base_path",
    "num_load_threads",
    "num_unload_threads",
    "max_num_load_retries",
    "load_retry_interval_micros",
    "file_system_poll_wait_seconds",
    "flush_filesystem_caches",
    "tensorflow_session_parallelism",
    "tensorflow_session_config_file",
    "tensorflow_intra_op_parallelism",
    "tensorflow_inter_op_parallelism",
    "use_alts_credentials",
    "ssl_config_file",
    "platform_config_file",
    "per_process_gpu_memory_fraction",
    "saved_model_tags",
    "grpc_channel_arguments",
    "grpc_max_threads",
    "enable_model_warmup",
    "num_request_iterations_for_warmup",
    "version",
    "monitoring_config_file",
    "remove_unused_fields_from_bundle_metagraph",
    "prefer_tflite_model",
    "num_tflite_pools",
    "num_tflite_interpreters_per_pool",
    "enable_signature_method_name_check",
    "xla_cpu_compilation_enabled",
    "xla_gpu_compilation_enabled",
    "enable_profiler",
    "thread_pool_factory_config_file",
    "mixed_precision",
    "skip_initialize_tpu",
    "enable_grpc_healthcheck_service",
    "enable_serialization_as_tensor_content",
]


def every_flag(files: dict[str, Path], socket_path: str) -> list[str]:
    """All 48 flags at once, with values a deployment could pass (not-applied ones with non-default values)."""
    base, batching, model_config = files["base"], files["batching"], files["model_config"]
    ssl_config, monitoring = files["ssl_config"], files["monitoring"]
    return [
        "--port=-1",
        f"--grpc_socket_path={socket_path}",
        "--rest_api_port=-1",
        "--rest_api_num_threads=3",
        "--rest_api_timeout_in_ms=20000",
        "--rest_api_enable_cors_support",
        "--enable_batching=true",
        "--allow_version_labels_for_unavailable_models=false",
        f"--batching_parameters_file={batching}",
        "--enable_per_model_batching_parameters=true",
        f"--model_config_file={model_config}",
        "--model_config_file_poll_wait_seconds=0",
        f"--model_name={MODEL}",
        f"--model_base_path={base}",
        "--num_load_threads=2",
        "--num_unload_threads=2",
        "--max_num_load_retries=3",
        "--load_retry_interval_micros=1000000",
        "--file_system_poll_wait_seconds=1",
        "--flush_filesystem_caches=false",
        "--tensorflow_session_parallelism=2",
        "--tensorflow_session_config_file=",
        "--tensorflow_intra_op_parallelism=1",
        "--tensorflow_inter_op_parallelism=0",
        "--use_alts_credentials=false",
        f"--ssl_config_file={ssl_config}",
        "--platform_config_file=",
        "--per_process_gpu_memory_fraction=0.5",
        "--saved_model_tags=serve",
        "--grpc_channel_arguments=grpc.max_concurrent_streams=64,grpc.primary_user_agent=tfs",
        "--grpc_max_threads=2",
        "--enable_model_warmup",
        "--num_request_iterations_for_warmup=1",
        "--version=false",
        f"--monitoring_config_file={monitoring}",
        "--remove_unused_fields_from_bundle_metagraph",
        "--prefer_tflite_model=false",
        "--num_tflite_pools=2",
        "--num_tflite_interpreters_per_pool=1",
        "--enable_signature_method_name_check=false",
        "--xla_cpu_compilation_enabled=false",
        "--xla_gpu_compilation_enabled=true",
        "--enable_profiler",
        "--thread_pool_factory_config_file=",
        "--mixed_precision=bfloat16",
        "--skip_initialize_tpu",
        "--enable_grpc_healthcheck_service=true",
        "--enable_serialization_as_tensor_content=false",
    ]


EXPECTED_NOT_APPLIED: tuple[str, ...] = ("per_process_gpu_memory_fraction", "xla_gpu_compilation_enabled")
EXPECTED_NOT_APPLIED += ("enable_profiler", "mixed_precision")


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    batching = tmp_path / "batching.config"
    batching.write_text("max_batch_size { value: 8 }\nbatch_timeout_micros { value: 1000 }\n")
    model_config = tmp_path / "models.config"
    base = tmp_path / "models" / MODEL
    model_config.write_text(f'model_config_list {{ config {{ name: "{MODEL}" base_path: "{base}" }} }}\n')
    ssl_config = tmp_path / "ssl.config"
    ssl_config.write_text(make_pki(tmp_path / "pki").ssl_config(client_verify=True))
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }\n')
    return {
        "base": base,
        "batching": batching,
        "model_config": model_config,
        "ssl_config": ssl_config,
        "monitoring": monitoring,
        "pki": tmp_path / "pki",  # the CA and the client's key pair (make_pki wrote them there)
    }


def test_every_tf_serving_flag_is_defined() -> None:
    defined = {a.dest for a in build_arg_parser()._actions}
    assert len(TF_SERVING_FLAGS) == 48
    assert [f for f in TF_SERVING_FLAGS if f not in defined] == []


def test_every_flag_at_once_parses(files: dict[str, Path]) -> None:
    argv = every_flag(files, "/tmp/ms.sock")
    assert sorted(a.split("=", 1)[0][2:] for a in argv) == sorted(TF_SERVING_FLAGS)
    o = parse_args(argv)
    assert o.not_applied_flags == EXPECTED_NOT_APPLIED
    assert [m.name for m in o.models] == [MODEL]
    assert o.ssl_config is not None and o.ssl_config.client_verify and o.enable_grpc_healthcheck_service
    assert o.prometheus_path == "/monitoring/prometheus/metrics"


def _opts(tmp_path: Path, *flags: str) -> ServerOptions:
    return parse_args([f"--model_base_path={tmp_path}", *flags])


APPLIED: list[tuple[list[str], Callable[[ServerOptions], Any], Any]] = [
    (["--grpc_socket_path=/run/tfs.sock"], lambda o: o.grpc_socket_path, "/run/tfs.sock"),
    (["--rest_api_enable_cors_support"], lambda o: o.rest_api_enable_cors_support, True),
    (["--enable_signature_method_name_check"], lambda o: o.enable_signature_method_name_check, True),
    (["--rest_api_enable_cors_support=false"], lambda o: o.rest_api_enable_cors_support, False),
    (["--rest_api_num_threads=3"], lambda o: o.request_threads, 3),
    (["--grpc_max_threads=5"], lambda o: o.request_threads, 5),
    (["--rest_api_num_threads=3", "--grpc_max_threads=5"], lambda o: o.num_request_threads, 5),
    (["--rest_api_num_threads=3", "--num_request_threads=7"], lambda o: o.num_request_threads, 7),  # ours wins
    (
        ["--grpc_channel_arguments=grpc.max_concurrent_streams=10, grpc.primary_user_agent=x"],
        lambda o: o.grpc_channel_arguments,
        (("grpc.max_concurrent_streams", 10), ("grpc.primary_user_agent", "x")),
    ),
    (
        ["--tensorflow_session_parallelism=4"],
        lambda o: (o.tensorflow_intra_op_parallelism, o.tensorflow_inter_op_parallelism),
        (4, 4),
    ),
    (
        ["--tensorflow_session_parallelism=4", "--tensorflow_intra_op_parallelism=2"],
        lambda o: (o.tensorflow_intra_op_parallelism, o.tensorflow_inter_op_parallelism),
        (2, 4),
    ),
    (
        ["--tensorflow_intra_op_parallelism=1", "--tensorflow_inter_op_parallelism=3"],
        lambda o: (o.tensorflow_intra_op_parallelism, o.tensorflow_inter_op_parallelism),
        (1, 3),
    ),
    (["--version=false"], lambda o: o.grpc_port, 8500),
    (["--saved_model_tags=serve,gpu"], lambda o: o.saved_model_tags, ("serve", "gpu")),
    (["--saved_model_tags= serve , tpu,"], lambda o: o.saved_model_tags, ("serve", "tpu")),
    (["--num_request_iterations_for_warmup=3"], lambda o: o.num_request_iterations_for_warmup, 3),
    (
        ["--max_num_load_retries=2", "--load_retry_interval_micros=1500"],
        lambda o: (o.load.max_num_load_retries, o.load.load_retry_interval_seconds),
        (2, 0.0015),
    ),
    (["--num_load_threads=3"], lambda o: o.load.num_load_threads, 3),
]


@pytest.mark.parametrize(("flags", "read", "expected"), APPLIED, ids=[" ".join(f) for f, _, _ in APPLIED])
def test_applied_flags_reach_server_options(
    tmp_path: Path, flags: list[str], read: Callable[[ServerOptions], Any], expected: Any
) -> None:
    assert read(_opts(tmp_path, *flags)) == expected


def test_defaults_change_nothing(tmp_path: Path) -> None:
    o = _opts(tmp_path)
    assert (o.grpc_socket_path, o.grpc_channel_arguments, o.rest_api_enable_cors_support) == ("", (), False)
    assert (o.tensorflow_intra_op_parallelism, o.tensorflow_inter_op_parallelism, o.num_request_threads) == (0, 0, 0)
    assert o.not_applied_flags == ()
    assert (o.saved_model_tags, o.num_request_iterations_for_warmup) == (("serve",), 1)
    assert (o.load.max_num_load_retries, o.load.num_load_threads) == (0, 0)  # TF Serving retries 5 times
    # a socket alone is something to serve on
    assert parse_args([f"--model_base_path={tmp_path}", "--port=0", "--grpc_socket_path=/x.sock"]).grpc_port == 0


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--grpc_channel_arguments=novalue", "expected key=value"),
        ("--tensorflow_intra_op_parallelism=-1", "must be >= 0"),
        ("--rest_api_num_threads=0", "must be positive"),
        ("--saved_model_tags=,", "must name at least one tag"),
        ("--max_num_load_retries=-1", "must be >= 0"),
        ("--num_request_iterations_for_warmup=-2", "must be >= 0"),
        ("--num_load_threads=-1", "must be >= 0"),
    ],
)
def test_bad_applied_flags_are_reported(tmp_path: Path, flag: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _opts(tmp_path, flag)


def test_channel_arguments_replace_ours(tmp_path: Path) -> None:
    o = _opts(tmp_path, "--grpc_channel_arguments=grpc.so_reuseport=1,grpc.max_concurrent_streams=8")
    options = dict(grpc_server_options(o))
    assert options["grpc.so_reuseport"] == 1 and options["grpc.max_concurrent_streams"] == 8
    assert options["grpc.max_receive_message_length"] == o.max_request_bytes
    assert parse_grpc_channel_arguments("") == ()


def test_not_applied_flags_draw_one_warning_line(tmp_path: Path) -> None:
    o = _opts(tmp_path, "--per_process_gpu_memory_fraction=0.3", "--use_alts_credentials", "--enable_profiler")
    line = not_applied_warning(o.not_applied_flags)
    assert "\n" not in line
    assert line.startswith("tensorflow_model_server flags accepted but not applied: ")
    assert "--per_process_gpu_memory_fraction (this server runs models on CPU)" in line
    assert "--use_alts_credentials (no ALTS" in line and "--enable_profiler (" in line
    # values that act here as they would in TF Serving draw no warning
    quiet = _opts(tmp_path, "--saved_model_tags=serve", "--enable_profiler=false", "--num_tflite_pools=4")
    assert quiet.not_applied_flags == () and not_applied_warning(()) == ""


def test_every_not_applied_flag_has_a_reason_and_parses_its_default() -> None:
    assert len({f.name for f in NOT_APPLIED}) == len(NOT_APPLIED)
    for flag in NOT_APPLIED:
        assert flag.reason and flag.name in TF_SERVING_FLAGS
        if flag.default is not None:
            assert flag.type(str(flag.default).lower()) == flag.default


@pytest.mark.parametrize("argv", [["--version"], ["--version=true"], ["--version", "--port=1"]])
def test_version_prints_tf_serving_lines(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.metadata

    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"TensorFlow ModelServer: {__version__}",
        f"TensorFlow Library: {importlib.metadata.version('tensorflow')}",
    ]


def test_version_false_serves_as_usual(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version=false"]) == 2  # no model flags: the usual error, no version lines
    assert "TensorFlow ModelServer" not in capsys.readouterr().out


def test_cors_middleware_answers_preflights() -> None:
    import asyncio

    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok")

    async def both() -> tuple[web.StreamResponse, web.StreamResponse]:
        preflight = await cors_middleware(make_mocked_request("OPTIONS", "/v1/models/m:predict"), handler)
        return preflight, await cors_middleware(make_mocked_request("POST", "/v1/models/m:predict"), handler)

    preflight, answer = asyncio.run(both())
    assert preflight.status == 200 and preflight.headers["Access-Control-Allow-Methods"] == "POST, GET"
    assert answer.headers["Access-Control-Allow-Origin"] == "*"


def test_a_server_with_every_flag_serves(
    spawn: Callable[..., ServerProcess], toy_models: dict[str, str], files: dict[str, Path]
) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from model_server.client import ClientTls, GrpcClient

    version = copy_version(toy_models["v1"], files["base"], 1)
    (version / "batching_params.pbtxt").write_text("max_batch_size { value: 4 }\n")  # per-model batching
    sock_dir = tempfile.mkdtemp(prefix="ms-")  # short: a UNIX socket path has at most 107 bytes
    try:
        socket_path = f"{sock_dir}/grpc.sock"
        flags = every_flag(files, socket_path)
        pki = files["pki"]
        tls = ClientTls(str(pki / "ca.pem"), str(pki / "client_cert.pem"), str(pki / "client_key.pem"))  # mTLS
        server = spawn(model_name=MODEL, model_base_path=str(files["base"]), extra_args=flags, tls=tls)
        server.wait_for_model(MODEL, timeout=180)
        with server.grpc_client() as tcp:  # TLS on the TCP port too
            assert tcp.predict_texts(MODEL, ["great"], input_name="text")[0]["label"] == "positive"
        with server.rest_client() as rest:
            assert rest.predict_texts(MODEL, ["great"], input_name="text")[0]["label"] == "positive"
            status, _, body = rest.request("GET", "/monitoring/prometheus/metrics")
            assert status == 200 and b"model_server_requests_total" in body
        with GrpcClient(f"unix:{socket_path}", tls=dataclasses.replace(tls, server_name="localhost")) as unix:
            assert unix.predict_texts(MODEL, ["awful"], input_name="text")[0]["label"] == "negative"
            health = health_pb2_grpc.HealthStub(unix.channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
        request = urllib.request.Request(f"{server.rest_url}/v1/models/{MODEL}:predict", method="OPTIONS")
        with urllib.request.urlopen(request, timeout=30, context=tls.ssl_context()) as response:
            assert response.status == 200 and response.headers["Access-Control-Allow-Origin"] == "*"
        log = server.log_text()
        warnings = [line for line in log.splitlines() if "accepted but not applied" in line]
        assert len(warnings) == 1, warnings
        assert all(f"--{name} (" in warnings[0] for name in EXPECTED_NOT_APPLIED)
        assert "TensorFlow thread pools: intra-op 1, inter-op 2" in log
        assert f"model {MODEL} version 1: batched with its batching_params.pbtxt" in log
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)


def test_namespace_holds_only_given_not_applied_flags(tmp_path: Path) -> None:
    a = build_arg_parser().parse_args([f"--model_base_path={tmp_path}", "--num_load_threads=3"])
    assert isinstance(a, argparse.Namespace)
    assert a.num_load_threads == 3 and not hasattr(a, "num_unload_threads")
