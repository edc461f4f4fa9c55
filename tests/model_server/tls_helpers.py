"""Test certificates, made on the fly with ``cryptography``: a CA, a server and a client certificate it signs, and
a second CA with a client certificate the server must refuse. Plus TF Serving's ``SSLConfig`` text for them."""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from model_server.client import ClientTls


@dataclasses.dataclass(frozen=True)
class KeyPair:
    key_pem: str
    cert_pem: str


@dataclasses.dataclass(frozen=True)
class Pki:
    ca: KeyPair
    server: KeyPair
    client: KeyPair
    other_ca: KeyPair
    other_client: KeyPair  # signed by other_ca: not trusted by the server
    files: dict[str, Path]  # ca.pem, client.pem/key, other_client.pem/key ...

    def ssl_config(self, client_verify: bool, custom_ca: bool = True) -> str:
        """TF Serving's SSLConfig text proto: PEM texts inside the file, escaped as text-format strings."""

        def quoted(pem: str) -> str:
            return '"' + pem.replace("\n", "\\n") + '"'

        lines = [f"server_key: {quoted(self.server.key_pem)}", f"server_cert: {quoted(self.server.cert_pem)}"]
        if custom_ca:
            lines.append(f"custom_ca: {quoted(self.ca.cert_pem)}")
        lines.append(f"client_verify: {'true' if client_verify else 'false'}")
        return "\n".join(lines) + "\n"

    def client_tls(self, who: str | None = "client") -> ClientTls:
        """Trusts our CA; presents ``who``'s certificate (None: none)."""
        if who is None:
            return ClientTls(str(self.files["ca"]))
        return ClientTls(str(self.files["ca"]), str(self.files[f"{who}_cert"]), str(self.files[f"{who}_key"]))


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def _issue(
    subject: str,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> tuple[KeyPair, x509.Name, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(subject)
    issuer_name, issuer_key = issuer if issuer is not None else (name, key)
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    if server:
        alt = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    cert = builder.sign(issuer_key, hashes.SHA256())
    pair = KeyPair(_pem_key(key), cert.public_bytes(serialization.Encoding.PEM).decode("ascii"))
    return pair, name, key


def make_pki(directory: Path) -> Pki:
    ca, ca_name, ca_key = _issue("model_server test CA", None, ca=True)
    server, _, _ = _issue("localhost", (ca_name, ca_key), server=True)
    client, _, _ = _issue("trusted client", (ca_name, ca_key))
    other_ca, other_name, other_key = _issue("another CA", None, ca=True)
    other_client, _, _ = _issue("untrusted client", (other_name, other_key))
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for label, text in {
        "ca": ca.cert_pem,
        "client_cert": client.cert_pem,
        "client_key": client.key_pem,
        "other_client_cert": other_client.cert_pem,
        "other_client_key": other_client.key_pem,
    }.items():
        files[label] = directory / f"{label}.pem"
        files[label].write_text(text)
    return Pki(ca, server, client, other_ca, other_client, files)
