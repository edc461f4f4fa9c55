"""``--ssl_config_file``: TLS for gRPC (as TF Serving) and for REST (our extension), from one ``SSLConfig``.

TF Serving reads ``server_key``/``server_cert``/``custom_ca`` as PEM text and, with ``client_verify: true``,
requires and verifies a client certificate (mTLS). It builds gRPC credentials straight from the strings, so a bad
key only shows when the first client connects; here the key pair and the CA are checked at start-up, so a wrong
file is a clear error instead of handshakes that fail later. TF Serving's REST port is plaintext; here the same
config secures REST too, so one file protects both ports.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from typing import Any

from model_server.model_config import ConfigError
from model_server.text_protos import SslConfig, load_ssl_config_file

_PEM_HINT = "SSLConfig fields hold the PEM text itself (-----BEGIN ...), not a file name"


def load_ssl_config(path: str) -> SslConfig:
    """Read, parse and check ``--ssl_config_file``; every problem is a :class:`ConfigError` for the user."""
    config = load_ssl_config_file(path)
    check_ssl_config(config, path)
    return config


def check_ssl_config(config: SslConfig, source: str) -> None:
    for field in ("server_key", "server_cert"):
        if not getattr(config, field).strip():
            raise ConfigError(f"{source}: {field} is empty; {_PEM_HINT}")
        if "-----BEGIN" not in getattr(config, field):
            raise ConfigError(f"{source}: {field} is not PEM; {_PEM_HINT}")
    if config.client_verify and not config.custom_ca.strip():
        raise ConfigError(f"{source}: client_verify needs custom_ca, the CA that signs the client certificates")
    server_ssl_context(config, source)  # raises ConfigError on a bad key, certificate or CA


def server_ssl_context(config: SslConfig, source: str = "--ssl_config_file") -> ssl.SSLContext:
    """The REST port's TLS context: the server's key pair, and with ``client_verify`` a required client
    certificate signed by ``custom_ca``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_key_pair(context, config, source)
    if config.custom_ca.strip():
        try:
            context.load_verify_locations(cadata=config.custom_ca)
        except (ssl.SSLError, ValueError) as exc:
            raise ConfigError(f"{source}: custom_ca is not a usable PEM certificate: {exc}") from None
    context.verify_mode = ssl.CERT_REQUIRED if config.client_verify else ssl.CERT_NONE
    return context


def _load_key_pair(context: ssl.SSLContext, config: SslConfig, source: str) -> None:
    # The ssl module reads a key pair only from files: a private directory, removed at once.
    with tempfile.TemporaryDirectory(prefix="model_server-tls-") as tmp:
        key_path = os.path.join(tmp, "key.pem")
        cert_path = os.path.join(tmp, "cert.pem")
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(config.server_key)
        with open(cert_path, "w", encoding="utf-8") as f:
            f.write(config.server_cert)
        try:
            context.load_cert_chain(cert_path, key_path, password=_no_password)
        except ssl.SSLError as exc:
            reason = exc.reason or str(exc)
            if reason == "KEY_VALUES_MISMATCH":
                detail = "server_key does not belong to server_cert"
            else:
                detail = f"server_key / server_cert cannot be used ({reason})"
            raise ConfigError(f"{source}: {detail}") from None
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None


def _no_password() -> str:
    raise ConfigError("server_key is encrypted; TF Serving's SSLConfig takes an unencrypted PEM key")


def grpc_server_credentials(config: SslConfig) -> Any:
    """TF Serving's ``BuildServerCredentials``: the key pair, ``custom_ca`` as roots, client auth iff
    ``client_verify``."""
    import grpc

    return grpc.ssl_server_credentials(
        [(config.server_key.encode("utf-8"), config.server_cert.encode("utf-8"))],
        root_certificates=config.custom_ca.encode("utf-8") if config.custom_ca.strip() else None,
        require_client_auth=config.client_verify,
    )
