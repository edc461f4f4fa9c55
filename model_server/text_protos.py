"""TF Serving's ``SSLConfig`` and ``MonitoringConfig`` text protos, parsed with real text-format rules.

Their .proto files (``tensorflow_serving/config/ssl_config.proto``, ``monitoring_config.proto``) are not shipped in
``tensorflow-serving-api``, so the two messages are built at run time from the same field names and numbers. As in
TF Serving, an unknown field or a syntax error is a start-up error naming the file, the message type and the line.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

from model_server.model_config import ConfigError

DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"  # TF Serving's PrometheusExporter::kPrometheusPath
_PACKAGE = "tensorflow.serving"
_API_PREFIXES = ("/v1/", "/v2/")


@dataclasses.dataclass(frozen=True)
class SslConfig:
    """``--ssl_config_file``: PEM texts (not file names), as in TF Serving's ``SSLConfig``."""

    server_key: str
    server_cert: str
    custom_ca: str = ""
    client_verify: bool = False


@dataclasses.dataclass(frozen=True)
class MonitoringConfig:
    """``--monitoring_config_file``: ``prometheus_path`` is None when Prometheus export is disabled."""

    prometheus_path: str | None


@functools.lru_cache(maxsize=1)
def _classes() -> dict[str, Any]:
    fd = descriptor_pb2.FieldDescriptorProto
    f = descriptor_pb2.FileDescriptorProto(name="model_server/tf_serving_configs.proto", package=_PACKAGE)
    f.syntax = "proto3"
    ssl = f.message_type.add(name="SSLConfig")
    for number, name in enumerate(("server_key", "server_cert", "custom_ca"), start=1):
        ssl.field.add(name=name, number=number, type=fd.TYPE_STRING, label=fd.LABEL_OPTIONAL)
    ssl.field.add(name="client_verify", number=4, type=fd.TYPE_BOOL, label=fd.LABEL_OPTIONAL)
    prometheus = f.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=fd.TYPE_BOOL, label=fd.LABEL_OPTIONAL)
    prometheus.field.add(name="path", number=2, type=fd.TYPE_STRING, label=fd.LABEL_OPTIONAL)
    monitoring = f.message_type.add(name="MonitoringConfig")
    monitoring.field.add(
        name="prometheus_config",
        number=1,
        type=fd.TYPE_MESSAGE,
        type_name=f".{_PACKAGE}.PrometheusConfig",
        label=fd.LABEL_OPTIONAL,
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
        for name in ("SSLConfig", "MonitoringConfig")
    }


def _parse(message: str, text: str, source: str) -> Any:
    proto = _classes()[message]()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as exc:
        raise ConfigError(f"{source}: Error parsing text-format {_PACKAGE}.{message}: {exc}") from None
    return proto


def _read(flag: str, path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {flag} {path!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{flag} {path!r} is not a UTF-8 text proto") from None


def parse_ssl_config_text(text: str, source: str = "<ssl config>") -> SslConfig:
    p = _parse("SSLConfig", text, source)
    return SslConfig(p.server_key, p.server_cert, p.custom_ca, bool(p.client_verify))


def parse_monitoring_config_text(text: str, source: str = "<monitoring config>") -> MonitoringConfig:
    """As TF Serving's HTTP server: Prometheus is served only with ``enable: true``; an empty path means the default."""
    prometheus = _parse("MonitoringConfig", text, source).prometheus_config
    if not prometheus.enable:
        return MonitoringConfig(None)
    path = prometheus.path or DEFAULT_PROMETHEUS_PATH
    if not path.startswith("/"):
        raise ConfigError(f"{source}: prometheus_config.path must start with '/', got {path!r}")
    if path.lower().startswith(_API_PREFIXES) or path.lower() in ("/v1", "/v2", "/healthz", "/readyz"):
        raise ConfigError(f"{source}: prometheus_config.path {path!r} would hide a REST API route")
    return MonitoringConfig(path)


def load_ssl_config_file(path: str) -> SslConfig:
    return parse_ssl_config_text(_read("--ssl_config_file", path), path)


def load_monitoring_config_file(path: str) -> MonitoringConfig:
    return parse_monitoring_config_text(_read("--monitoring_config_file", path), path)
