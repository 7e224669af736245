"""A CA and a broker certificate made with openssl, for tests of a TLS (SASL_SSL) cluster."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TestCertificates:
    ca_pem: Path  # the CA's certificate: what clients trust
    keystore_pem: Path  # the broker's private key (PKCS#8) and certificate, for Kafka


def make_certificates(directory: Path, host: str = "127.0.0.1") -> TestCertificates:
    """A throw-away CA, and a certificate it signs for `host` (an IP and localhost)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_pem = directory / "ca.key", directory / "ca.pem"
    key, csr, cert = directory / "broker.key", directory / "broker.csr", directory / "broker.pem"
    extensions = directory / "san.cnf"
    extensions.write_text(f"subjectAltName=IP:{host},DNS:localhost\n")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_pem,
             "-days", "2", "-subj", "/CN=sessionflow test CA")  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
             "-subj", f"/CN={host}")  # fmt: skip
    _openssl("x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key, "-CAcreateserial",
             "-out", cert, "-days", "2", "-extfile", extensions)  # fmt: skip
    keystore = directory / "broker.keystore.pem"
    keystore.write_text(key.read_text() + cert.read_text())
    keystore.chmod(0o600)
    return TestCertificates(ca_pem=ca_pem, keystore_pem=keystore)


def _openssl(*args: object) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)
