"""A self-signed certificate for the emulator's HTTPS (``EmulatorConfig.tls_cert``/``tls_key``): for 127.0.0.1 and
localhost, valid for a day, with an RSA 2048 key as S3's certificates have (what a client's handshake costs
depends on it), made with ``cryptography`` (which moto already needs) rather than an ``openssl`` binary the
machine may lack. Clients trust it by taking the certificate file as their CA bundle."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path


def self_signed(directory: Path) -> dict[str, str]:
    """Write ``cert.pem`` and ``key.pem`` into ``directory``; returns the emulator's settings for them
    (``tls_cert`` and ``tls_key``: their paths)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "S3 emulator")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    cert_path, key_path = Path(directory) / "cert.pem", Path(directory) / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return {"tls_cert": str(cert_path), "tls_key": str(key_path)}
