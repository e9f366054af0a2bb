"""Development TLS: the CA and server certificate are made once, are right, and are reused."""

from __future__ import annotations

import ipaddress
import ssl
import stat
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509

from keystead.devtls import dev_tls_dir, ensure_dev_ca, ensure_dev_tls
from keystead.errors import ConfigError


def _cert(path):
    return x509.load_pem_x509_certificate(path.read_bytes())


def _sans(cert):
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)), set(san.get_values_for_type(x509.IPAddress))


def test_ca_and_certificate_are_created_with_the_right_shape(tmp_path):
    tls = ensure_dev_tls(tmp_path)

    assert tls.ca_cert == dev_tls_dir(tmp_path) / "ca.pem"
    ca, cert = _cert(tls.ca_cert), _cert(tls.cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    cert.verify_directly_issued_by(ca)
    dns, ips = _sans(cert)
    assert dns == {"localhost"}
    assert ips == {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    for key in (dev_tls_dir(tmp_path) / "ca-key.pem", tls.key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_second_call_reuses_everything(tmp_path):
    first = ensure_dev_tls(tmp_path)
    files = [first.ca_cert, first.cert, first.key, dev_tls_dir(tmp_path) / "ca-key.pem"]
    before = [p.read_bytes() for p in files]

    second = ensure_dev_tls(tmp_path)

    assert second == first
    assert [p.read_bytes() for p in files] == before
    assert ensure_dev_ca(tmp_path) == first.ca_cert
    assert first.ca_cert.read_bytes() == before[0]


def test_extra_name_reissues_the_certificate_under_the_same_ca(tmp_path):
    first = ensure_dev_tls(tmp_path)
    ca_before, cert_before = first.ca_cert.read_bytes(), first.cert.read_bytes()

    ensure_dev_tls(tmp_path, ["keystead.localhost", "10.1.2.3"])

    assert first.ca_cert.read_bytes() == ca_before
    assert first.cert.read_bytes() != cert_before
    dns, ips = _sans(_cert(first.cert))
    assert dns == {"localhost", "keystead.localhost"}
    assert ipaddress.ip_address("10.1.2.3") in ips
    # The default names alone are still covered: no new certificate.
    again = first.cert.read_bytes()
    ensure_dev_tls(tmp_path)
    assert first.cert.read_bytes() == again


def test_certificate_near_expiry_is_renewed(tmp_path):
    tls = ensure_dev_tls(tmp_path)
    old = _cert(tls.cert)

    ensure_dev_tls(tmp_path, now=datetime.now(UTC) + timedelta(days=350))

    new = _cert(tls.cert)
    assert new.serial_number != old.serial_number
    new.verify_directly_issued_by(_cert(tls.ca_cert))


def test_unreadable_ca_is_a_config_error(tmp_path):
    ca = ensure_dev_ca(tmp_path)
    ca.write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"development CA .* is unreadable"):
        ensure_dev_tls(tmp_path)


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1", "::1"])
def test_tls_handshake_verifies_against_the_dev_ca(tmp_path, hostname):
    """A client trusting only the dev CA completes a handshake for every default name."""
    tls = ensure_dev_tls(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tls.cert, tls.key)
    client_ctx = ssl.create_default_context(cafile=str(tls.ca_cert))
    client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT  # what Python 3.13+ clients insist on

    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=hostname)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, end in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            break
    assert all(done.values())
    assert client.getpeercert()["subject"] == ((("commonName", "localhost"),),)
