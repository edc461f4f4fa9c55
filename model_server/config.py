"""The command line, with ``tensorflow_model_server``'s flag names, and the :class:`ServerOptions` it produces.

Nothing here runs at import time: :func:`parse_args` is called by ``__main__`` (and by tests with their own argv), so
importing the package never reads ``sys.argv``. The files that some flags name are parsed by
:mod:`model_server.model_config`; TF Serving's remaining flags are defined in :mod:`model_server.tf_serving_flags`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from collections.abc import Sequence

from model_server.model_config import (
    BatchingOptions,
    ConfigError,
    ModelConfig,
    load_batching_parameters_file,
    load_model_config_file,
    local_path,
)
from model_server.text_protos import DEFAULT_PROMETHEUS_PATH, SslConfig, load_monitoring_config_file
from model_server.tf_serving_flags import (
    add_tf_serving_flags,
    not_applied_flags,
    parse_grpc_channel_arguments,
    parse_tags,
    request_threads,
    thread_pools,
)
from model_server.tf_serving_flags import parse_bool as parse_bool  # re-exported: the one boolean parser
from model_server.version_dirs import LoadOptions

log = logging.getLogger(__name__)

# Tokens (rows x padded length) per ONNX Runtime call: onnx_engine.call_groups says why and what was measured.
ONNX_MAX_CALL_TOKENS = 512
EPHEMERAL_PORT = -1  # our extension: bind an OS-chosen free port and report it (log line and --port_file)


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    """Everything the server was told, validated."""

    host: str = "127.0.0.1"
    grpc_port: int = 8500
    rest_api_port: int = 0
    port_file: str = ""
    models: tuple[ModelConfig, ...] = ()
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: float = 0.0
    file_system_poll_wait_seconds: float = 1.0
    enable_batching: bool = False
    batching: BatchingOptions = BatchingOptions()
    enable_model_warmup: bool = True
    custom_op_modules: tuple[str, ...] = ("tensorflow_text",)
    num_request_threads: int = 0
    max_request_bytes: int = 10 * 1024 * 1024
    max_instances_per_request: int = 1024
    rest_api_timeout_in_ms: int = 30_000
    allow_empty_text: bool = False
    onnx_engine: str = "auto"  # auto: serve what a version's ONNX manifest names with ONNX Runtime once it checks out
    onnx_intra_op_threads: int = 0  # 0: ONNX Runtime's choice (one per physical core)
    onnx_max_batch_size: int = -1  # calls with more rows go to TensorFlow; -1: measured at load, 0: no limit
    onnx_max_call_tokens: int = ONNX_MAX_CALL_TOKENS  # rows x padded length per ONNX Runtime call; 0: a batch a call
    enable_signature_method_name_check: bool = False
    access_log_path: str = "-"
    request_log_path: str = ""
    request_log_sample_rate: float = 1.0
    shutdown_grace_seconds: float = 10.0
    log_level: str = "INFO"
    grpc_socket_path: str = ""
    grpc_channel_arguments: tuple[tuple[str, int | str], ...] = ()
    rest_api_enable_cors_support: bool = False
    tensorflow_intra_op_parallelism: int = 0  # 0: TensorFlow's automatic choice
    tensorflow_inter_op_parallelism: int = 0
    ssl_config: SslConfig | None = None  # --ssl_config_file: TLS (and mTLS) on gRPC and REST
    prometheus_path: str | None = DEFAULT_PROMETHEUS_PATH  # --monitoring_config_file; None: disabled there
    enable_grpc_healthcheck_service: bool = False
    enable_per_model_batching_parameters: bool = False  # batching_params.pbtxt in each version directory
    saved_model_tags: tuple[str, ...] = ("serve",)  # the MetaGraphDef loaded and shown by GetModelMetadata
    num_request_iterations_for_warmup: int = 1
    load: LoadOptions = LoadOptions()  # --max_num_load_retries, --load_retry_interval_micros, --num_load_threads
    not_applied_flags: tuple[str, ...] = ()  # TF Serving flags given that change nothing here (one start-up warning)

    @property
    def request_threads(self) -> int:
        return self.num_request_threads or (os.cpu_count() or 1)


# --- command line ------------------------------------------------------------------------------------------------


def _onnx_batch_limit(value: str) -> int:
    """``--onnx_max_batch_size``: ``auto`` (-1) or a row count >= 0."""
    if value.strip().lower() == "auto":
        return -1
    try:
        limit = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto or a number of rows >= 0, got {value!r}") from None
    if limit < 0:
        raise argparse.ArgumentTypeError(f"expected auto or a number of rows >= 0, got {value!r}")
    return limit


def build_arg_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m model_server",
        description="A model server speaking TensorFlow Serving's REST and gRPC APIs "
        "(flags as tensorflow_model_server).",
    )
    tfs = p.add_argument_group("tensorflow_model_server flags")
    tfs.add_argument("--port", type=int, default=8500, help="gRPC port; 0 disables gRPC, -1 picks a free port")
    tfs.add_argument("--rest_api_port", type=int, default=0, help="REST port; 0 disables REST, -1 picks a free port")
    tfs.add_argument("--rest_api_timeout_in_ms", type=int, default=30_000, help="deadline of one REST call")
    tfs.add_argument("--model_name", default="default", help="name of the single model (without a config file)")
    tfs.add_argument("--model_base_path", default="", help="directory holding the model's integer version dirs")
    tfs.add_argument("--model_config_file", default="", help="text-proto ModelServerConfig (several models)")
    tfs.add_argument(
        "--model_config_file_poll_wait_seconds",
        type=float,
        default=0.0,
        help="re-read --model_config_file this often; 0 reads it once",
    )
    tfs.add_argument(
        "--file_system_poll_wait_seconds",
        type=float,
        default=1.0,
        help="how often the base paths are polled for new versions; 0 polls once at startup",
    )
    # nargs="?" accepts both TF Serving's `--enable_batching` and `--enable_batching=true`.
    tfs.add_argument("--enable_batching", type=parse_bool, nargs="?", const=True, default=False)
    tfs.add_argument("--batching_parameters_file", default="", help="text-proto BatchingParameters")
    tfs.add_argument(
        "--enable_model_warmup",
        type=parse_bool,
        nargs="?",
        const=True,
        default=True,
        help="replay assets.extra/tf_serving_warmup_requests (or a synthetic request) on load",
    )
    add_tf_serving_flags(tfs)
    own = p.add_argument_group("model_server's own flags")
    own.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default loopback only; use 0.0.0.0 in a container or behind a proxy)",
    )
    own.add_argument("--port_file", default="", help="write the bound ports as JSON here once listening")
    own.add_argument(
        "--custom_op_modules",
        default="tensorflow_text",  # = model.DEFAULT_OP_MODULES
        help="comma-separated Python modules imported before loading models, to register custom ops",
    )
    own.add_argument(
        "--num_request_threads",
        type=int,
        default=0,
        help="threads running the model when batching is off (0: one per CPU core)",
    )
    own.add_argument(
        "--max_request_bytes",
        type=int,
        default=10 * 1024 * 1024,
        help="largest request body (REST: 413 beyond it; gRPC: RESOURCE_EXHAUSTED)",
    )
    own.add_argument("--max_instances_per_request", type=int, default=1024, help="largest batch in one request")
    own.add_argument(
        "--allow_empty_text",
        type=parse_bool,
        nargs="?",
        const=True,
        default=False,
        help="accept empty or whitespace-only strings in the inputs a model's serving hints mark as text "
        "(rejected with 400 by default)",
    )
    own.add_argument(
        "--onnx_engine",
        default="auto",
        choices=["auto", "off"],
        help="auto: run the signatures a version's assets.extra/onnx_engine.json names in ONNX Runtime when its "
        "load check agrees with TensorFlow; off: TensorFlow only",
    )
    own.add_argument(
        "--onnx_intra_op_threads",
        type=int,
        default=0,
        help="threads of each ONNX Runtime session (0: ONNX Runtime's choice, one per physical core)",
    )
    own.add_argument(
        "--onnx_max_batch_size",
        type=_onnx_batch_limit,
        default=-1,
        help="auto (default): time both engines at load on 1 and 32 texts and send each call to the faster one by "
        "its number of rows; 0: ONNX Runtime for every call; N: ONNX Runtime for calls of up to N rows",
    )
    own.add_argument(
        "--onnx_max_call_tokens",
        type=int,
        default=ONNX_MAX_CALL_TOKENS,
        help="the ONNX engine runs a batch in calls of at most this many tokens (rows x the call's longest row), "
        "rows sorted by length, so that long texts neither pad to the longest nor share one huge attention; "
        "0: every batch in one call",
    )
    own.add_argument("--access_log_path", default="-", help="JSON-lines access log; '-' is stderr, '' disables it")
    own.add_argument(
        "--request_log_path",
        default="",
        help="opt-in JSON-lines log of request text (PII masked) and predictions, for drift monitoring",
    )
    own.add_argument("--request_log_sample_rate", type=float, default=1.0, help="fraction of requests logged")
    own.add_argument(
        "--shutdown_grace_seconds",
        type=float,
        default=10.0,
        help="on SIGTERM/SIGINT, how long in-flight requests may take to finish",
    )
    own.add_argument("--log_level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def _check_port(flag: str, value: int) -> None:
    if not (value == EPHEMERAL_PORT or 0 <= value <= 65535):
        raise ConfigError(f"--{flag} must be -1 (any free port), 0 (disabled) or 1..65535, got {value}")


def wants_version(argv: Sequence[str]) -> bool:
    """``--version`` (or ``--version=true``) among the flags; the other flags are not validated then."""
    known, _ = build_arg_parser().parse_known_args(list(argv))
    return bool(known.version)


def parse_args(argv: Sequence[str]) -> ServerOptions:
    """Flags → validated :class:`ServerOptions`; raises :class:`ConfigError` with a message for the user."""
    a = build_arg_parser().parse_args(list(argv))
    _check_port("port", a.port)
    _check_port("rest_api_port", a.rest_api_port)
    if a.port == 0 and a.rest_api_port == 0 and not a.grpc_socket_path:
        raise ConfigError("both --port and --rest_api_port are 0: nothing to serve on")
    if a.model_config_file:
        if a.model_base_path:
            log.warning("--model_config_file is set: --model_name/--model_base_path are ignored")
        models = tuple(load_model_config_file(a.model_config_file))
    elif a.model_base_path:
        if not a.model_name:
            raise ConfigError("--model_name must not be empty")
        models = (ModelConfig(a.model_name, local_path(a.model_base_path)),)
    else:
        raise ConfigError("either --model_base_path or --model_config_file must be set")
    batching = BatchingOptions()
    if a.batching_parameters_file:
        if not a.enable_batching:
            log.warning("--batching_parameters_file is set but --enable_batching is not: batching stays off")
        batching = load_batching_parameters_file(a.batching_parameters_file)
    if a.enable_per_model_batching_parameters and not a.enable_batching:
        log.warning("--enable_per_model_batching_parameters is set but --enable_batching is not: batching stays off")
    for flag in ("max_request_bytes", "max_instances_per_request", "rest_api_timeout_in_ms"):
        if getattr(a, flag) <= 0:
            raise ConfigError(f"--{flag} must be positive")
    if a.file_system_poll_wait_seconds < 0 or a.model_config_file_poll_wait_seconds < 0:
        raise ConfigError("poll intervals must be >= 0")
    if not 0.0 <= a.request_log_sample_rate <= 1.0:
        raise ConfigError("--request_log_sample_rate must be within [0, 1]")
    for flag in ("onnx_intra_op_threads", "onnx_max_call_tokens"):
        if getattr(a, flag) < 0:
            raise ConfigError(f"--{flag} must be >= 0")
    if a.shutdown_grace_seconds < 0:
        raise ConfigError("--shutdown_grace_seconds must be >= 0")
    ssl_config = None
    if a.ssl_config_file:
        if getattr(a, "use_alts_credentials", False):  # TF Serving's server.cc refuses both
            raise ConfigError("Either use_alts_credentials must be false or ssl_config_file must be empty.")
        from model_server.tls import load_ssl_config

        ssl_config = load_ssl_config(a.ssl_config_file)
    prometheus_path: str | None = DEFAULT_PROMETHEUS_PATH  # no file: served there as well as at /metrics
    if a.monitoring_config_file:
        prometheus_path = load_monitoring_config_file(a.monitoring_config_file).prometheus_path
    tags, warmup_iterations, load = _loading_options(a)
    intra, inter = thread_pools(
        a.tensorflow_session_parallelism, a.tensorflow_intra_op_parallelism, a.tensorflow_inter_op_parallelism
    )
    return ServerOptions(
        host=a.host,
        grpc_port=a.port,
        rest_api_port=a.rest_api_port,
        port_file=a.port_file,
        models=models,
        model_config_file=a.model_config_file,
        model_config_file_poll_wait_seconds=a.model_config_file_poll_wait_seconds,
        file_system_poll_wait_seconds=a.file_system_poll_wait_seconds,
        enable_batching=a.enable_batching,
        batching=batching,
        enable_model_warmup=a.enable_model_warmup,
        custom_op_modules=tuple(m.strip() for m in a.custom_op_modules.split(",") if m.strip()),
        num_request_threads=request_threads(a.num_request_threads, a.rest_api_num_threads, a.grpc_max_threads),
        max_request_bytes=a.max_request_bytes,
        max_instances_per_request=a.max_instances_per_request,
        rest_api_timeout_in_ms=a.rest_api_timeout_in_ms,
        allow_empty_text=a.allow_empty_text,
        onnx_engine=a.onnx_engine,
        onnx_intra_op_threads=a.onnx_intra_op_threads,
        onnx_max_batch_size=a.onnx_max_batch_size,
        onnx_max_call_tokens=a.onnx_max_call_tokens,
        enable_signature_method_name_check=a.enable_signature_method_name_check,
        access_log_path=a.access_log_path,
        request_log_path=a.request_log_path,
        request_log_sample_rate=a.request_log_sample_rate,
        shutdown_grace_seconds=a.shutdown_grace_seconds,
        log_level=a.log_level,
        grpc_socket_path=a.grpc_socket_path,
        grpc_channel_arguments=parse_grpc_channel_arguments(a.grpc_channel_arguments),
        rest_api_enable_cors_support=a.rest_api_enable_cors_support,
        tensorflow_intra_op_parallelism=intra,
        tensorflow_inter_op_parallelism=inter,
        ssl_config=ssl_config,
        prometheus_path=prometheus_path,
        enable_grpc_healthcheck_service=a.enable_grpc_healthcheck_service,
        enable_per_model_batching_parameters=a.enable_per_model_batching_parameters,
        saved_model_tags=tags,
        num_request_iterations_for_warmup=warmup_iterations,
        load=load,
        not_applied_flags=not_applied_flags(a),
    )


def _loading_options(a: argparse.Namespace) -> tuple[tuple[str, ...], int, LoadOptions]:
    """``--saved_model_tags``, ``--num_request_iterations_for_warmup`` and the load retry / thread flags."""
    tags = parse_tags(a.saved_model_tags)
    if not tags:
        raise ConfigError("--saved_model_tags must name at least one tag (TF Serving's default: serve)")
    for flag in ("num_request_iterations_for_warmup", "max_num_load_retries", "load_retry_interval_micros"):
        if getattr(a, flag) < 0:
            raise ConfigError(f"--{flag} must be >= 0")
    if a.num_load_threads < 0:
        raise ConfigError("--num_load_threads must be >= 0")
    load = LoadOptions(
        max_num_load_retries=a.max_num_load_retries,
        load_retry_interval_seconds=a.load_retry_interval_micros / 1e6,
        num_load_threads=a.num_load_threads,
    )
    # TF Serving uses the value "only if > 0": 0 means its default, one replay of each record.
    return tags, a.num_request_iterations_for_warmup or 1, load
