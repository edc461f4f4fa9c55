"""``--ssl_config_file``: TF Serving's SSLConfig secures gRPC (stock stubs) and REST; client_verify is mTLS."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from model_server.client import ClientTls
from model_server.config import parse_args
from model_server.model_config import ConfigError
from model_server.process import ServerProcess
from model_server.text_protos import parse_ssl_config_text
from model_server.tls import check_ssl_config
from tests.model_server.ms_helpers import MODEL, copy_version
from tests.model_server.tls_helpers import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _config_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "ssl.config"
    path.write_text(text)
    return str(path)


def _parse(tmp_path: Path, text: str) -> None:
    parse_args([f"--model_base_path={tmp_path}", f"--ssl_config_file={_config_file(tmp_path, text)}"])


# --- the file ----------------------------------------------------------------------------------------------------


def test_ssl_config_reaches_server_options(pki: Pki, tmp_path: Path) -> None:
    o = parse_args(
        [f"--model_base_path={tmp_path}", f"--ssl_config_file={_config_file(tmp_path, pki.ssl_config(True))}"]
    )
    assert o.ssl_config is not None and o.ssl_config.client_verify
    assert o.ssl_config.server_cert == pki.server.cert_pem and o.ssl_config.custom_ca == pki.ca.cert_pem
    assert "ssl_config_file" not in o.not_applied_flags


@pytest.mark.parametrize(
    ("make_text", "message"),
    [
        (lambda p: p.ssl_config(False) + "server_port: 1\n", "Error parsing text-format tensorflow.serving.SSLConfig"),
        (lambda p: 'server_key: "/etc/tls/key.pem"\nserver_cert: "/etc/tls/cert.pem"\n', "not a file name"),
        (lambda p: f'server_cert: "{p.server.cert_pem}"'.replace("\n", "\\n"), "server_key is empty"),
        (lambda p: p.ssl_config(True, custom_ca=False), "client_verify needs custom_ca"),
        (
            lambda p: p.ssl_config(False).replace(
                p.server.key_pem.replace("\n", "\\n"), p.client.key_pem.replace("\n", "\\n")
            ),
            "server_key does not belong to server_cert",
        ),
        (
            lambda p: p.ssl_config(False).replace(
                p.ca.cert_pem.replace("\n", "\\n"), "-----BEGIN CERTIFICATE-----\\nxx"
            ),
            "custom_ca is not a usable PEM certificate",
        ),
    ],
    ids=["unknown field", "file names", "no key", "verify without ca", "key mismatch", "bad ca"],
)
def test_bad_ssl_configs_are_start_up_errors(
    pki: Pki, tmp_path: Path, make_text: Callable[[Pki], str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        _parse(tmp_path, make_text(pki))


def test_unreadable_file_and_alts_conflict(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read --ssl_config_file"):
        parse_args([f"--model_base_path={tmp_path}", f"--ssl_config_file={tmp_path / 'missing'}"])
    path = _config_file(tmp_path, pki.ssl_config(False))
    with pytest.raises(ConfigError, match="Either use_alts_credentials must be false or ssl_config_file must be empty"):
        parse_args([f"--model_base_path={tmp_path}", f"--ssl_config_file={path}", "--use_alts_credentials"])


def test_an_encrypted_key_is_refused(pki: Pki) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pki.server.key_pem.encode(), None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    ).decode()
    text = pki.ssl_config(False).replace(pki.server.key_pem.replace("\n", "\\n"), encrypted.replace("\n", "\\n"))
    with pytest.raises(ConfigError, match="server_key is encrypted"):
        check_ssl_config(parse_ssl_config_text(text), "ssl.config")


# --- a server ----------------------------------------------------------------------------------------------------


def _server(
    spawn: Callable[..., ServerProcess], toy_models: dict[str, str], tmp_path: Path, pki: Pki, verify: bool
) -> ServerProcess:
    base = tmp_path / "models" / MODEL
    copy_version(toy_models["v1"], base, 1)
    flags = [f"--ssl_config_file={_config_file(tmp_path, pki.ssl_config(verify))}"]
    server = spawn(
        model_name=MODEL, model_base_path=str(base), extra_args=flags, tls=pki.client_tls("client" if verify else None)
    )
    server.wait_for_model(MODEL, timeout=180)
    return server


def _grpc_predict(server: ServerProcess, tls: ClientTls | None) -> str:
    """One Predict with the stock PredictionService stub; returns the label."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.inputs["text"].CopyFrom(tf.make_tensor_proto([b"a great film"]))
    if tls is None:
        channel = grpc.insecure_channel(server.grpc_target)
    else:
        channel = grpc.secure_channel(server.grpc_target, tls.grpc_credentials())
    with channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=10)
    return str(tf.make_ndarray(response.outputs["label"])[0].decode())


def _rest_predict(server: ServerProcess, context: ssl.SSLContext) -> str:
    body = json.dumps({"instances": [{"text": "an awful film"}]}).encode()
    request = urllib.request.Request(f"https://127.0.0.1:{server.rest_port}/v1/models/{MODEL}:predict", data=body)
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        return str(json.loads(response.read())["predictions"][0]["label"])


def test_tls_on_grpc_and_rest(
    spawn: Callable[..., ServerProcess], toy_models: dict[str, str], tmp_path: Path, pki: Pki
) -> None:
    server = _server(spawn, toy_models, tmp_path, pki, verify=False)
    assert server.rest_url.startswith("https://")
    assert _grpc_predict(server, pki.client_tls(None)) == "positive"
    assert _rest_predict(server, pki.client_tls(None).ssl_context()) == "negative"
    with pytest.raises(grpc.RpcError) as info:  # plaintext to a TLS port
        _grpc_predict(server, None)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):  # a client that trusts another CA
        _rest_predict(server, ssl.create_default_context(cadata=pki.other_ca.cert_pem))
    assert "Using SSL credentials" in server.log_text()


def test_mtls_accepts_only_clients_signed_by_custom_ca(
    spawn: Callable[..., ServerProcess], toy_models: dict[str, str], tmp_path: Path, pki: Pki
) -> None:
    server = _server(spawn, toy_models, tmp_path, pki, verify=True)
    assert _grpc_predict(server, pki.client_tls("client")) == "positive"
    assert _rest_predict(server, pki.client_tls("client").ssl_context()) == "negative"
    for who in ("other_client", None):  # a certificate from another CA, and none at all
        with pytest.raises(grpc.RpcError) as info:
            _grpc_predict(server, pki.client_tls(who))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE, who
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            _rest_predict(server, pki.client_tls(who).ssl_context())
    assert _grpc_predict(server, pki.client_tls("client")) == "positive"  # refusals left the server serving
