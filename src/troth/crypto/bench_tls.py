"""A throwaway PKI for the TLS benchmark peer: one CA, one server and one client certificate.

All keys are ECDSA P-256, every certificate is signed by the CA (ECDSA with SHA-256) and valid
for one day; the PEM files (keys unencrypted, mode 0600) exist only to feed stdlib `ssl`.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import pathlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TlsPki", "make_tls_pki"]

_VALIDITY = datetime.timedelta(days=1)
_CLOCK_SKEW = datetime.timedelta(minutes=1)  # valid from a minute ago, for one day


@dataclass(frozen=True)
class TlsPki:
    """Paths of the PEM files written by `make_tls_pki`."""

    ca_cert: pathlib.Path
    server_cert: pathlib.Path
    server_key: pathlib.Path
    client_cert: pathlib.Path
    client_key: pathlib.Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(*, signing: bool, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _builder(
    subject: str, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, now: datetime.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now - _CLOCK_SKEW + _VALIDITY)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _leaf(
    subject: str,
    usage: x509.ObjectIdentifier,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    now: datetime.datetime,
    san: x509.SubjectAlternativeName | None = None,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(subject, ca_cert.subject, key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signing=True, cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def _write_private(path: pathlib.Path, data: bytes) -> None:
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as file:
        os.fchmod(file.fileno(), 0o600)  # O_CREAT keeps an existing file's mode: force it
        file.write(data)


def _write_cert(path: pathlib.Path, cert: x509.Certificate) -> None:
    _write_private(path, cert.public_bytes(serialization.Encoding.PEM))


def _write_key(path: pathlib.Path, key: ec.EllipticCurvePrivateKey) -> None:
    _write_private(
        path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def make_tls_pki(directory: pathlib.Path) -> TlsPki:
    """Create a CA, a server certificate (SAN IP 127.0.0.1 and DNS localhost) and a client
    certificate, all ECDSA P-256 and valid for one day, as PEM files in `directory`."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("troth bench TLS CA")
    ca_cert = (
        _builder("troth bench TLS CA", ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signing=False, cert_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server_san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
    )
    server_key, server_cert = _leaf(
        "localhost", ExtendedKeyUsageOID.SERVER_AUTH, ca_key, ca_cert, now, server_san
    )
    client_key, client_cert = _leaf(
        "troth bench TLS client", ExtendedKeyUsageOID.CLIENT_AUTH, ca_key, ca_cert, now
    )

    directory.mkdir(parents=True, exist_ok=True)
    pki = TlsPki(
        ca_cert=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )
    _write_cert(pki.ca_cert, ca_cert)
    _write_cert(pki.server_cert, server_cert)
    _write_key(pki.server_key, server_key)
    _write_cert(pki.client_cert, client_cert)
    _write_key(pki.client_key, client_key)
    return pki
