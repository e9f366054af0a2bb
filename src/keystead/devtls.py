"""Local development TLS (`keystead serve --dev-tls`): a private CA and a localhost certificate.

Some SDKs insist on https (auth0-spa-js outside localhost, strict OIDC clients), so the server
can serve HTTPS with a certificate from a CA created once under `<data_dir>/dev-tls/`:

    ca.pem  ca-key.pem (0600)          the CA clients trust (SSL_CERT_FILE, NODE_EXTRA_CA_CERTS)
    server.pem  server-key.pem (0600)  localhost, 127.0.0.1, ::1 (+ extra names), signed by it

Both are reused on later starts; the server certificate alone is reissued when it nears expiry or
lacks a requested name, so a trusted CA stays trusted.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keystead.errors import ConfigError

DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")
CA_LIFETIME = timedelta(days=3650)
CERT_LIFETIME = timedelta(days=365)  # under Apple's 825-day ceiling for TLS server certificates
RENEW_BEFORE = timedelta(days=30)

IPName = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class DevTls:
    ca_cert: Path  # what clients must trust
    cert: Path
    key: Path


def dev_tls_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / "dev-tls"


def ensure_dev_ca(data_dir: str | Path, *, now: datetime | None = None) -> Path:
    """Create the development CA if needed; return the path of its certificate."""
    _ca(dev_tls_dir(data_dir), now or datetime.now(UTC))
    return dev_tls_dir(data_dir) / "ca.pem"


def ensure_dev_tls(
    data_dir: str | Path, extra_names: Iterable[str] = (), *, now: datetime | None = None
) -> DevTls:
    """Create (or reuse) the CA and a server certificate covering the default and extra names."""
    now = now or datetime.now(UTC)
    folder = dev_tls_dir(data_dir)
    ca_cert, ca_key = _ca(folder, now)
    names = list(dict.fromkeys([*DEFAULT_NAMES, *(n for n in extra_names if n)]))
    cert_path, key_path = folder / "server.pem", folder / "server-key.pem"
    if not _server_cert_usable(cert_path, key_path, ca_cert, names, now):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue_server_cert(key, ca_cert, ca_key, names, now)
        _write(key_path, _key_pem(key), private=True)
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return DevTls(ca_cert=folder / "ca.pem", cert=cert_path, key=key_path)


# --- the CA ------------------------------------------------------------------------------------


def _ca(folder: Path, now: datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = folder / "ca.pem", folder / "ca-key.pem"
    if cert_path.exists() and key_path.exists():
        cert, key = _load_ca(cert_path, key_path)
        if cert.not_valid_after_utc > now + RENEW_BEFORE:
            return cert, key
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    # A random suffix keeps two machines' CAs apart in a trust store that holds both.
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Keystead development"),
            x509.NameAttribute(
                NameOID.COMMON_NAME, f"Keystead development CA {secrets.token_hex(4)}"
            ),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    # Key first: a CA certificate on disk without its key would be unusable.
    _write(key_path, _key_pem(key), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _load_ca(
    cert_path: Path, key_path: Path
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"development CA in {cert_path.parent} is unreadable ({exc}); "
            "delete that directory to create a new one"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise ConfigError(
            f"development CA in {cert_path.parent} does not match its key; "
            "delete that directory to create a new one"
        )
    return cert, key


# --- the server certificate --------------------------------------------------------------------


def _server_cert_usable(
    cert_path: Path,
    key_path: Path,
    ca_cert: x509.Certificate,
    names: list[str],
    now: datetime,
) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca_cert)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    covered = {str(n) for n in san.get_values_for_type(x509.DNSName)}
    covered |= {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    return (
        key.public_key() == cert.public_key()
        and cert.not_valid_after_utc > now + RENEW_BEFORE
        and all(_canonical(n) in covered for n in names)
    )


def _issue_server_cert(
    key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    names: list[str],
    now: datetime,
) -> x509.Certificate:
    alt: list[x509.GeneralName] = []
    for n in names:
        ip = _ip(n)
        alt.append(x509.IPAddress(ip) if ip is not None else x509.DNSName(n))
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(min(now + CERT_LIFETIME, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


# --- helpers -----------------------------------------------------------------------------------


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _ip(name: str) -> IPName | None:
    try:
        return ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return None


def _canonical(name: str) -> str:
    ip = _ip(name)
    return str(ip) if ip is not None else name


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write atomically; private files are created 0600 so the key is never world-readable."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
