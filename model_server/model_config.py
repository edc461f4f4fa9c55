"""TF Serving's configuration file formats: ``--model_config_file`` (``ModelServerConfig``) and
``--batching_parameters_file`` (``BatchingParameters``), parsed with real text-proto rules into plain dataclasses.

The command line that names these files is in :mod:`model_server.config`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2

log = logging.getLogger(__name__)


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
    """One served model: ``config { name base_path model_version_policy version_labels }``."""

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


def parse_model_config_text(text: str, source: str = "<model config>") -> list[ModelConfig]:
    """Parse TF Serving's ``ModelServerConfig`` text proto (``model_config_list { config { ... } }``)."""
    from tensorflow_serving.config import model_server_config_pb2

    proto = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return configs_from_proto(proto, source)


def configs_from_proto(proto: Any, source: str) -> list[ModelConfig]:
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
        configs.append(ModelConfig(c.name, local_path(c.base_path), policy, labels))
    if not configs:
        raise ConfigError(f"{source}: no model configured")
    return configs


def _policy_from_proto(p: Any, name: str, source: str) -> VersionPolicy:
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


def _read_flag_file(flag: str, path: str) -> str:
    """The text of the file a flag names, or a ConfigError naming the flag and the file."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {flag} {path!r}: {exc.strerror}") from None


def load_model_config_file(path: str) -> list[ModelConfig]:
    """Read and parse ``--model_config_file``."""
    return parse_model_config_text(_read_flag_file("--model_config_file", path), path)


def local_path(base_path: str) -> str:
    """An absolute local path for a model base path; ``file://`` is accepted, other file systems are refused."""
    if base_path.startswith("file://"):
        base_path = base_path[len("file://") :]
    if "://" in base_path:
        raise ConfigError(f"base_path {base_path!r}: only local file systems are supported")
    return os.path.abspath(base_path)


def _batching_parameters_class() -> Any:
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

    def wrapped(name: str, default: int) -> int:
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
    """Read and parse ``--batching_parameters_file``."""
    return parse_batching_parameters_text(_read_flag_file("--batching_parameters_file", path), path)
