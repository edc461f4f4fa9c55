"""The `tensorflow_model_server` flags beyond the core ones in :mod:`model_server.config`, and what each does here.

A drop-in must accept every flag TF Serving accepts (deployments and TF Serving's own harness pass several on every
start), even those that mean nothing here. Each flag is either *applied* (it reaches :class:`ServerOptions`) or
*accepted, not applied*: then :func:`not_applied_warning` names it, with the reason, in one start-up warning line
when it was given with a value that would act differently in TF Serving. Nothing here imports TensorFlow or gRPC.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
from collections.abc import Callable, Sequence
from typing import Any

from model_server.model_config import ConfigError

Parser = Callable[[str], Any]


ANY = None  # NotApplied.quiet: every value behaves here as in TF Serving


@dataclasses.dataclass(frozen=True)
class NotApplied:
    """A TF Serving flag that is parsed and validated but changes nothing here, and why."""

    name: str
    type: Parser
    default: Any  # TF Serving's (None: it depends on the machine)
    quiet: tuple[Any, ...] | None  # values that behave here as in TF Serving: given, they draw no warning
    reason: str


def parse_bool(value: str) -> bool:
    """A boolean flag's value: 1/true/yes/on or 0/false/no/off, any case (an argparse ``type=``).

    The project's one boolean parser (the pipeline's flags use it too, as ``model_server.config.parse_bool``).
    """
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


_NO_GPU = "this server runs models on CPU"
_NO_TFLITE = "no TensorFlow Lite runtime here"
_NOT_YET = "not yet implemented"
_B = parse_bool

# Flags accepted for compatibility whose meaning does not exist here (or is not built yet).
NOT_APPLIED: tuple[NotApplied, ...] = (
    NotApplied("allow_version_labels_for_unavailable_models", _B, False, (False,), _NOT_YET),
    NotApplied("num_unload_threads", int, 0, ANY, "unloading drops references: nothing runs on unload threads"),
    NotApplied("flush_filesystem_caches", _B, True, ANY, "local file systems only: nothing to flush"),
    NotApplied("tensorflow_session_config_file", str, "", ("",), _NOT_YET),
    NotApplied("use_alts_credentials", _B, False, (False,), "no ALTS (Google Cloud only)"),
    NotApplied("platform_config_file", str, "", ("",), "one platform only: TensorFlow SavedModels"),
    NotApplied("per_process_gpu_memory_fraction", float, 0.0, (0.0,), _NO_GPU),
    NotApplied("remove_unused_fields_from_bundle_metagraph", _B, True, ANY, "no MetaGraphDef is kept in memory"),
    NotApplied("prefer_tflite_model", _B, False, (False,), _NO_TFLITE),
    NotApplied("num_tflite_pools", int, None, ANY, _NO_TFLITE),
    NotApplied("num_tflite_interpreters_per_pool", int, 1, ANY, _NO_TFLITE),
    NotApplied("xla_cpu_compilation_enabled", _B, False, (False,), "not applied to TF2 SavedModels"),
    NotApplied("xla_gpu_compilation_enabled", _B, False, (False,), _NO_GPU),
    NotApplied("enable_profiler", _B, True, (False,), "no TensorFlow profiler service"),
    NotApplied("thread_pool_factory_config_file", str, "", ("",), "no custom thread pools"),
    NotApplied("mixed_precision", str, "", ("",), _NO_GPU),
    NotApplied("skip_initialize_tpu", _B, False, ANY, "no TPU"),
    NotApplied("enable_serialization_as_tensor_content", _B, False, (False,), _NOT_YET),
)


def add_tf_serving_flags(group: Any) -> None:
    """The TF Serving flags :mod:`model_server.config` does not define itself (``group``: an argparse group)."""
    group.add_argument("--grpc_socket_path", default="", help="also serve gRPC on this UNIX domain socket")
    group.add_argument(
        "--rest_api_num_threads",
        type=int,
        default=None,
        help="TF Serving's REST threads; here: the model-call threads when --num_request_threads is not set",
    )
    group.add_argument(
        "--grpc_max_threads",
        type=int,
        default=None,
        help="TF Serving's gRPC threads; here: the model-call threads when --num_request_threads is not set",
    )
    group.add_argument(
        "--enable_signature_method_name_check",
        type=parse_bool,
        nargs="?",
        const=True,
        default=False,
        help="Classify / Regress / MultiInference: require the signature's method name (off: its structure decides)",
    )
    group.add_argument(
        "--rest_api_enable_cors_support",
        type=parse_bool,
        nargs="?",
        const=True,
        default=False,
        help="answer CORS preflights and send Access-Control-Allow-Origin: *",
    )
    group.add_argument(
        "--grpc_channel_arguments",
        default="",
        help="comma-separated key=value gRPC server channel arguments, e.g. grpc.max_concurrent_streams=100",
    )
    for name in (
        "tensorflow_session_parallelism",
        "tensorflow_intra_op_parallelism",
        "tensorflow_inter_op_parallelism",
    ):
        group.add_argument(f"--{name}", type=int, default=0, help="TensorFlow thread pool size (0: automatic)")
    group.add_argument(
        "--version", type=parse_bool, nargs="?", const=True, default=False, help="print the versions and exit"
    )
    group.add_argument(
        "--ssl_config_file",
        default="",
        help="text-proto SSLConfig (PEM server_key, server_cert, custom_ca; client_verify): TLS on gRPC and REST",
    )
    group.add_argument(
        "--monitoring_config_file",
        default="",
        help="text-proto MonitoringConfig: prometheus_config { enable: true path: ... } on the REST port",
    )
    group.add_argument(
        "--enable_per_model_batching_parameters",
        type=parse_bool,
        nargs="?",
        const=True,
        default=False,
        help="with --enable_batching: batch only versions holding batching_params.pbtxt, with those parameters",
    )
    group.add_argument(
        "--enable_grpc_healthcheck_service",
        type=parse_bool,
        nargs="?",
        const=True,
        default=False,
        help="serve grpc.health.v1.Health on the gRPC port",
    )
    _add_loading_flags(group)
    for flag in NOT_APPLIED:
        nargs: dict[str, Any] = {"nargs": "?", "const": True} if flag.type is parse_bool else {}
        group.add_argument(
            f"--{flag.name}",
            type=flag.type,
            default=argparse.SUPPRESS,  # absent from the namespace unless given: only given flags are reported
            help=f"accepted, not applied: {flag.reason}",
            **nargs,
        )


def _add_loading_flags(group: Any) -> None:
    """How SavedModels load (applied by :mod:`model_server.repository` and :mod:`model_server.model`)."""
    group.add_argument(
        "--saved_model_tags",
        default="serve",
        help="comma-separated tags of the MetaGraphDef to load and describe in GetModelMetadata",
    )
    group.add_argument(
        "--num_request_iterations_for_warmup",
        type=int,
        default=1,
        help="replay each assets.extra/tf_serving_warmup_requests record this many times",
    )
    group.add_argument(
        "--max_num_load_retries",
        type=int,
        default=0,
        help="retry a failed version load this many times (TF Serving's default is 5; ours 0: a failed version "
        "is retried when its files change)",
    )
    group.add_argument(
        "--load_retry_interval_micros",
        type=int,
        default=60_000_000,
        help="wait between load retries, in microseconds",
    )
    group.add_argument(
        "--num_load_threads",
        type=int,
        default=0,
        help="versions loading at once after start-up, across models (0: one at a time); the initial load uses "
        "4 x CPU cores, as TF Serving",
    )


def parse_tags(text: str) -> tuple[str, ...]:
    """``--saved_model_tags``: comma separated, as TF Serving splits it (empty items dropped)."""
    return tuple(t.strip() for t in text.split(",") if t.strip())


def not_applied_flags(args: argparse.Namespace) -> tuple[str, ...]:
    """The not-applied flags given with a value that would act differently in TF Serving (:data:`NOT_APPLIED` order)."""
    return tuple(
        f.name
        for f in NOT_APPLIED
        if hasattr(args, f.name) and f.quiet is not ANY and getattr(args, f.name) not in f.quiet
    )


def not_applied_warning(names: Sequence[str]) -> str:
    """The one start-up warning line for the flags :func:`not_applied_flags` found ('' when there are none)."""
    if not names:
        return ""
    reasons = {f.name: f.reason for f in NOT_APPLIED}
    parts = [f"--{name} ({reasons[name]})" for name in names]
    return "tensorflow_model_server flags accepted but not applied: " + "; ".join(parts)


def parse_grpc_channel_arguments(text: str) -> tuple[tuple[str, int | str], ...]:
    """TF Serving's ``key=value,key=value`` (integer values become ints, as TF Serving passes them)."""
    result: list[tuple[str, int | str]] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--grpc_channel_arguments: expected key=value, got {item!r}")
        value = value.strip()
        try:
            result.append((key.strip(), int(value)))
        except ValueError:
            result.append((key.strip(), value))
    return tuple(result)


def thread_pools(session: int, intra: int, inter: int) -> tuple[int, int]:
    """(intra, inter) op parallelism: TF Serving's per-pool flags win over ``--tensorflow_session_parallelism``."""
    for flag, value in (("session", session), ("intra_op", intra), ("inter_op", inter)):
        if value < 0:
            raise ConfigError(f"--tensorflow_{flag}_parallelism must be >= 0")
    return intra or session, inter or session


def request_threads(num_request_threads: int, rest_threads: int | None, grpc_threads: int | None) -> int:
    """Model-call threads: ours if set, else the larger of TF Serving's REST and gRPC thread counts given."""
    for flag, value in (("rest_api_num_threads", rest_threads), ("grpc_max_threads", grpc_threads)):
        if value is not None and value <= 0:
            raise ConfigError(f"--{flag} must be positive")
    if num_request_threads:
        return num_request_threads
    return max((t for t in (rest_threads, grpc_threads) if t is not None), default=0)


_TF_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tf-nightly")


def version_text(our_version: str) -> str:
    """What ``--version`` prints, in TF Serving's two-line format (read from package metadata: no TF import)."""
    tf_version = "unknown"
    for dist in _TF_DISTRIBUTIONS:
        try:
            tf_version = importlib.metadata.version(dist)
            break
        except importlib.metadata.PackageNotFoundError:
            continue
    return f"TensorFlow ModelServer: {our_version}\nTensorFlow Library: {tf_version}"
