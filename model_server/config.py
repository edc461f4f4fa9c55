"""Command line and configuration files, with ``tensorflow_model_server``'s flag names and file formats.

Nothing here runs at import time: :func:`parse_args` is called by ``__main__`` (and by tests with their own argv), so
importing the package never reads ``sys.argv``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from collections.abc import Sequence

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2

log = logging.getLogger(__name__)

EPHEMERAL_PORT = -1  # our extension: bind an OS-chosen free port and report it (log line and --port_file)


class ConfigError(ValueError):
    """A bad flag or configuration file: reported on stderr and the process exits with status 2."""


@dataclasses.dataclass(frozen=True)
class VersionPolicy:
    """Which integer version directories are served (``model_version_policy`` of TF Serving)."""

    kind: str = "latest"  # "latest" | "all" | "specific"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def select(self, candidates: Sequence[int]) -> list[int]:
        """The aspired versions among loadable candidates, highest first."""
        ordered = sorted(set(candidates), reverse=True)
        if self.kind == "all":
            return ordered
        if self.kind == "specific":
            wanted = set(self.versions)
            return [v for v in ordered if v in wanted]
        return ordered[: self.num_versions]


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    name: str
    base_path: str
    policy: VersionPolicy = VersionPolicy()
    labels: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    """TF Serving's ``BatchingParameters`` (defaults as in its batching session)."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    num_batch_threads: int = 0  # 0: one per CPU core
    max_enqueued_batches: int = 10
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False

    def validate(self) -> BatchingOptions:
        if self.max_batch_size <= 0:
            raise ConfigError("batching: max_batch_size must be positive")
        if self.batch_timeout_micros < 0:
            raise ConfigError("batching: batch_timeout_micros must be >= 0")
        if self.max_enqueued_batches <= 0:
            raise ConfigError("batching: max_enqueued_batches must be positive")
        if self.num_batch_threads < 0:
            raise ConfigError("batching: num_batch_threads must be >= 0")
        sizes = self.allowed_batch_sizes
        if sizes:
            if any(b <= 0 for b in sizes) or list(sizes) != sorted(set(sizes)):
                raise ConfigError("batching: allowed_batch_sizes must be positive and strictly increasing")
            if sizes[-1] != self.max_batch_size:
                # Same rule as TF Serving: the largest allowed size is the batch size limit.
                raise ConfigError(
                    f"batching: the last entry in allowed_batch_sizes ({sizes[-1]}) must equal "
                    f"max_batch_size ({self.max_batch_size})"
                )
        if self.pad_variable_length_inputs:
            log.warning("batching: pad_variable_length_inputs is ignored; only same-shaped requests share a batch")
        return self

    @property
    def threads(self) -> int:
        return self.num_batch_threads or (os.cpu_count() or 1)


@dataclasses.dataclass(frozen=True)
class ServerOptions:
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
    access_log_path: str = "-"
    request_log_path: str = ""
    request_log_sample_rate: float = 1.0
    shutdown_grace_seconds: float = 10.0
    log_level: str = "INFO"

    @property
    def request_threads(self) -> int:
        return self.num_request_threads or (os.cpu_count() or 1)


# --- text-proto files -------------------------------------------------------------------------------------------


def parse_model_config_text(text: str, source: str = "<model config>") -> list[ModelConfig]:
    """Parse TF Serving's ``ModelServerConfig`` text proto (``model_config_list { config { ... } }``)."""
    from tensorflow_serving.config import model_server_config_pb2

    proto = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return configs_from_proto(proto, source)


def configs_from_proto(proto, source: str) -> list[ModelConfig]:
    """``ModelServerConfig`` proto (from a file or a HandleReloadConfigRequest) → validated model configs."""
    if proto.WhichOneof("config") == "custom_model_config":
        raise ConfigError(f"{source}: custom_model_config is not supported; use model_config_list")
    configs: list[ModelConfig] = []
    seen: set[str] = set()
    for c in proto.model_config_list.config:
        if not c.name:
            raise ConfigError(f"{source}: every config needs a name")
        if c.name in seen:
            raise ConfigError(f"{source}: model name {c.name!r} appears twice")
        seen.add(c.name)
        if not c.base_path:
            raise ConfigError(f"{source}: model {c.name!r} needs a base_path")
        if c.model_platform and c.model_platform != "tensorflow":
            raise ConfigError(f"{source}: model {c.name!r}: only model_platform 'tensorflow' is served")
        policy = _policy_from_proto(c.model_version_policy, c.name, source)
        labels = {label: int(version) for label, version in c.version_labels.items()}
        configs.append(ModelConfig(c.name, _local_path(c.base_path), policy, labels))
    if not configs:
        raise ConfigError(f"{source}: no model configured")
    return configs


def _policy_from_proto(p, name: str, source: str) -> VersionPolicy:
    which = p.WhichOneof("policy_choice")
    if which == "all":
        return VersionPolicy("all")
    if which == "specific":
        if not p.specific.versions:
            raise ConfigError(f"{source}: model {name!r}: specific policy lists no versions")
        return VersionPolicy("specific", versions=tuple(int(v) for v in p.specific.versions))
    if which == "latest":
        n = p.latest.num_versions or 1
        return VersionPolicy("latest", num_versions=n)
    return VersionPolicy()


def load_model_config_file(path: str) -> list[ModelConfig]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read --model_config_file {path!r}: {exc.strerror}") from None
    return parse_model_config_text(text, path)


def _local_path(base_path: str) -> str:
    if base_path.startswith("file://"):
        base_path = base_path[len("file://") :]
    if "://" in base_path:
        raise ConfigError(f"base_path {base_path!r}: only local file systems are supported")
    return os.path.abspath(base_path)


def _batching_parameters_class():
    """Build TF Serving's ``BatchingParameters`` message at run time (its .proto is not in tensorflow-serving-api)
    so files are parsed with real text-proto rules: comments, wrapper messages, errors with line numbers."""
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    f = descriptor_pb2.FileDescriptorProto(
        name="model_server/batching_parameters.proto",
        package="tensorflow.serving",
        dependency=["google/protobuf/wrappers.proto"],
        syntax="proto3",
    )
    m = f.message_type.add(name="BatchingParameters")
    fd = descriptor_pb2.FieldDescriptorProto
    fields = [
        ("max_batch_size", ".google.protobuf.Int64Value"),
        ("batch_timeout_micros", ".google.protobuf.Int64Value"),
        ("thread_pool_name", ".google.protobuf.StringValue"),
        ("num_batch_threads", ".google.protobuf.Int64Value"),
        ("max_enqueued_batches", ".google.protobuf.Int64Value"),
        ("enable_large_batch_splitting", ".google.protobuf.BoolValue"),
        ("max_execution_batch_size", ".google.protobuf.Int64Value"),
        ("batch_padding_policy", ".google.protobuf.StringValue"),
    ]
    for number, (field_name, type_name) in enumerate(fields, start=1):
        m.field.add(name=field_name, number=number, type=fd.TYPE_MESSAGE, type_name=type_name, label=fd.LABEL_OPTIONAL)
    m.field.add(name="allowed_batch_sizes", number=20, type=fd.TYPE_INT64, label=fd.LABEL_REPEATED)
    m.field.add(name="pad_variable_length_inputs", number=21, type=fd.TYPE_BOOL, label=fd.LABEL_OPTIONAL)
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


def parse_batching_parameters_text(text: str, source: str = "<batching parameters>") -> BatchingOptions:
    """Parse TF Serving's ``--batching_parameters_file`` text proto, e.g. ``max_batch_size { value: 32 }``."""
    proto = _batching_parameters_class()()
    try:
        text_format.Parse(text, proto, allow_unknown_field=True)
    except text_format.ParseError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    defaults = BatchingOptions()

    def wrapped(name: str, default):
        return getattr(proto, name).value if proto.HasField(name) else default

    for ignored in ("thread_pool_name", "enable_large_batch_splitting", "max_execution_batch_size"):
        if proto.HasField(ignored):
            log.info(
                "batching: %s is accepted for compatibility; requests larger than max_batch_size are always "
                "split into max_batch_size chunks",
                ignored,
            )
    return BatchingOptions(
        max_batch_size=int(wrapped("max_batch_size", defaults.max_batch_size)),
        batch_timeout_micros=int(wrapped("batch_timeout_micros", defaults.batch_timeout_micros)),
        num_batch_threads=int(wrapped("num_batch_threads", defaults.num_batch_threads)),
        max_enqueued_batches=int(wrapped("max_enqueued_batches", defaults.max_enqueued_batches)),
        allowed_batch_sizes=tuple(int(b) for b in proto.allowed_batch_sizes),
        pad_variable_length_inputs=bool(proto.pad_variable_length_inputs),
    ).validate()


def load_batching_parameters_file(path: str) -> BatchingOptions:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read --batching_parameters_file {path!r}: {exc.strerror}") from None
    return parse_batching_parameters_text(text, path)


# --- command line ------------------------------------------------------------------------------------------------


def _bool(value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


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
    tfs.add_argument("--enable_batching", type=_bool, nargs="?", const=True, default=False)
    tfs.add_argument("--batching_parameters_file", default="", help="text-proto BatchingParameters")
    tfs.add_argument(
        "--enable_model_warmup",
        type=_bool,
        nargs="?",
        const=True,
        default=True,
        help="replay assets.extra/tf_serving_warmup_requests (or a synthetic request) on load",
    )
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
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        help="accept empty or whitespace-only strings for 'text' inputs (rejected with 400 by default)",
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


def parse_args(argv: Sequence[str]) -> ServerOptions:
    """Flags → validated :class:`ServerOptions`; raises :class:`ConfigError` with a message for the user."""
    a = build_arg_parser().parse_args(list(argv))
    _check_port("port", a.port)
    _check_port("rest_api_port", a.rest_api_port)
    if a.port == 0 and a.rest_api_port == 0:
        raise ConfigError("both --port and --rest_api_port are 0: nothing to serve on")
    if a.model_config_file:
        if a.model_base_path:
            log.warning("--model_config_file is set: --model_name/--model_base_path are ignored")
        models = tuple(load_model_config_file(a.model_config_file))
    elif a.model_base_path:
        if not a.model_name:
            raise ConfigError("--model_name must not be empty")
        models = (ModelConfig(a.model_name, _local_path(a.model_base_path)),)
    else:
        raise ConfigError("either --model_base_path or --model_config_file must be set")
    batching = BatchingOptions()
    if a.batching_parameters_file:
        if not a.enable_batching:
            log.warning("--batching_parameters_file is set but --enable_batching is not: batching stays off")
        batching = load_batching_parameters_file(a.batching_parameters_file)
    for flag in ("max_request_bytes", "max_instances_per_request", "rest_api_timeout_in_ms"):
        if getattr(a, flag) <= 0:
            raise ConfigError(f"--{flag} must be positive")
    if a.file_system_poll_wait_seconds < 0 or a.model_config_file_poll_wait_seconds < 0:
        raise ConfigError("poll intervals must be >= 0")
    if not 0.0 <= a.request_log_sample_rate <= 1.0:
        raise ConfigError("--request_log_sample_rate must be within [0, 1]")
    if a.shutdown_grace_seconds < 0:
        raise ConfigError("--shutdown_grace_seconds must be >= 0")
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
        num_request_threads=a.num_request_threads,
        max_request_bytes=a.max_request_bytes,
        max_instances_per_request=a.max_instances_per_request,
        rest_api_timeout_in_ms=a.rest_api_timeout_in_ms,
        allow_empty_text=a.allow_empty_text,
        access_log_path=a.access_log_path,
        request_log_path=a.request_log_path,
        request_log_sample_rate=a.request_log_sample_rate,
        shutdown_grace_seconds=a.shutdown_grace_seconds,
        log_level=a.log_level,
    )
