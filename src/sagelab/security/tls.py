"""The server's TLS certificate: given (`tls_cert`/`tls_key`), or self-signed into `<home>/tls` on first use.

The self-signed certificate names 127.0.0.1, ::1 and localhost (and the listening host) as subject
alternative names, so clients that verify it against `AWS_CA_BUNDLE=<home>/tls/cert.pem` accept it; its
key is written with mode 0600.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import os
from pathlib import Path

CERT_NAME, KEY_NAME = "cert.pem", "key.pem"


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    #: True for the home's own certificate: clients need it as their CA bundle.
    self_signed: bool


def home_certificate(home: Path) -> Path:
    return Path(home) / "tls" / CERT_NAME


def tls_files(home: Path, cert: str = "", key: str = "", host: str = "127.0.0.1") -> TlsFiles:
    if cert or key:
        if not (cert and key):
            raise ValueError("tls_cert and tls_key are given together: a certificate and its private key.")
        return TlsFiles(Path(cert).expanduser(), Path(key).expanduser(), self_signed=False)
    folder = Path(home) / "tls"
    cert_path, key_path = folder / CERT_NAME, folder / KEY_NAME
    if not (cert_path.exists() and key_path.exists()):
        _self_signed(folder, host)
    return TlsFiles(cert_path, key_path, self_signed=True)


def _self_signed(folder: Path, host: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                     x509.IPAddress(ipaddress.ip_address("::1"))]
    try:
        address = ipaddress.ip_address(host)
        if not address.is_unspecified and x509.IPAddress(address) not in names:
            names.append(x509.IPAddress(address))
    except ValueError:
        if host and host != "localhost":
            names.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sagelab"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sagelab (self-signed)")])
    now = dt.datetime.now(dt.UTC)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + dt.timedelta(days=825))
                   .add_extension(x509.SubjectAlternativeName(names), critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=False,
                                                content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False, encipher_only=False,
                                                decipher_only=False), critical=True)
                   .sign(key, hashes.SHA256()))
    key_path = folder / KEY_NAME
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    (folder / CERT_NAME).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
