"""Servers a tenant names reach only the public internet, at the address that was checked."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl

import pytest

from core.errors import DomainError

REFUSED = [
    "127.0.0.1",
    "127.8.9.10",
    "::1",
    "10.0.0.5",
    "172.16.4.4",
    "192.168.1.1",
    "169.254.169.254",  # the cloud metadata service
    "100.64.0.1",  # shared address space (carrier-grade NAT)
    "0.0.0.0",
    "::",
    "224.0.0.251",
    "ff02::1",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.10",  # documentation
    "fd00::1",
    "fe80::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "2002:7f00:1::1",  # 6to4 around 127.0.0.1
    "2002:a00:5::1",  # 6to4 around 10.0.0.5
    "64:ff9b::a00:5",  # NAT64 around 10.0.0.5
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
]
PUBLIC = ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "2a00:1450:4001:80b::200e"]


@pytest.fixture
def strict(app, monkeypatch):
    """The production rule: private hosts are not allowed (tests allow them by default)."""
    monkeypatch.setitem(app.config, "ALLOW_PRIVATE_HOSTS", False)
    with app.app_context():
        yield


@pytest.mark.parametrize("address", REFUSED)
def test_an_address_outside_the_public_internet_is_refused(strict, address):
    from core.netcheck import RefusedAddress, checked_address

    with pytest.raises(RefusedAddress) as refused:
        checked_address(address, 25)
    assert isinstance(refused.value, DomainError) and refused.value.field == "host"
    assert "is not a server on the internet" in str(refused.value.message)


@pytest.mark.parametrize("address", PUBLIC)
def test_a_public_address_is_returned_to_connect_to(strict, address):
    from core.netcheck import checked_address

    assert checked_address(address, 587) == (str(ipaddress.ip_address(address)), 587)
    assert checked_address(f"[{address}]", 465)[0] == str(ipaddress.ip_address(address))


def test_a_name_is_judged_by_what_it_resolves_to_and_the_answer_hides_the_address(strict):
    from core.netcheck import RefusedAddress, UnknownHost, checked_address

    with pytest.raises(RefusedAddress) as refused:
        checked_address("localhost", 25)
    assert "localhost is not a server on the internet" in str(refused.value.message)
    assert "127.0.0.1" not in str(refused.value.message), "what internal names resolve to is not told"
    with pytest.raises(UnknownHost) as unknown:
        checked_address("no-such-server.invalid", 25)
    assert unknown.value.field == "host" and "could not be found" in str(unknown.value.message)


def test_the_operator_may_allow_private_hosts(app, monkeypatch):
    from core.config import load_config
    from core.netcheck import checked_address

    monkeypatch.delenv("VENTANILLA_ALLOW_PRIVATE_HOSTS", raising=False)
    base = {"INSTANCE_PATH": app.config["INSTANCE_PATH"], "SECRET_KEY": "x" * 32}
    assert load_config(base)["ALLOW_PRIVATE_HOSTS"] is False, "off by default"
    assert load_config({**base, "TESTING": True})["ALLOW_PRIVATE_HOSTS"] is True
    monkeypatch.setenv("VENTANILLA_ALLOW_PRIVATE_HOSTS", "1")
    assert load_config(base)["ALLOW_PRIVATE_HOSTS"] is True
    monkeypatch.setitem(app.config, "ALLOW_PRIVATE_HOSTS", True)
    with app.app_context():
        assert checked_address("localhost", 25) == ("127.0.0.1", 25)
        assert checked_address("169.254.169.254", 80) == ("169.254.169.254", 80)


# --- SMTP: connected to the checked address, TLS verified against the name -----------------------


def _certificate(tmp_path, name: str):
    """A self-signed certificate for ``name``: (certificate file, key file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture
def tls_smtp_server(app, tmp_path):
    """aiosmtpd offering STARTTLS with a certificate for the name ``localhost``, on the address that
    ``localhost`` resolves to."""
    pytest.importorskip("aiosmtpd")
    from aiosmtpd.controller import Controller

    from tests.core.mail.conftest import Recorder, _free_port

    cert_file, key_file = _certificate(tmp_path, "localhost")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    address, port = socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM)[0][4][0], _free_port()
    controller = Controller(Recorder(), hostname=address, port=port, tls_context=server_context)
    controller.start()
    yield address, port, cert_file
    controller.stop()


def test_smtp_connects_to_the_checked_address_and_verifies_tls_against_the_name(app, tmp_path, tls_smtp_server):
    from core.netcheck import smtp_client

    address, port, cert_file = tls_smtp_server
    trusting = ssl.create_default_context(cafile=str(cert_file))
    with app.app_context():
        client = smtp_client("localhost", port, context=trusting, timeout=10)
        with client:
            assert client.sock.getpeername()[0] == address
            client.starttls(context=trusting)
            assert client.sock.server_hostname == "localhost", "TLS is verified against the name, not the address"
            assert client.noop()[0] == 250
        stranger, _key = _certificate(tmp_path, "mail.example.com")
        other = smtp_client("localhost", port, context=ssl.create_default_context(cafile=str(stranger)), timeout=10)
        with other, pytest.raises(ssl.SSLCertVerificationError):
            other.starttls(context=ssl.create_default_context(cafile=str(stranger)))


def test_smtp_never_connects_to_a_refused_address(strict, tls_smtp_server):
    from core.netcheck import RefusedAddress, smtp_client

    _address, port, _cert = tls_smtp_server
    with pytest.raises(RefusedAddress):
        smtp_client("localhost", port, timeout=10)


# --- HTTP(S): the same, for webhooks, sedes and boards ---------------------------------------------


@pytest.fixture
def tls_http_server(app, tmp_path):
    """An HTTPS server with a certificate for ``localhost`` that answers with the Host header it got."""
    import http.server
    import threading

    cert_file, key_file = _certificate(tmp_path, "localhost")

    class EchoHost(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = (self.headers.get("Host") or "").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    address = socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM)[0][4][0]
    server_class = type(
        "Server", (http.server.ThreadingHTTPServer,), {"address_family": socket.getaddrinfo(address, 0)[0][0]}
    )
    server = server_class((address, 0), EchoHost)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield address, server.server_address[1], cert_file
    server.shutdown()
    server.server_close()


def test_https_connects_to_the_checked_address_with_the_name_in_host_sni_and_certificate(
    app, tmp_path, tls_http_server
):
    from core.netcheck import pinned_http_connection

    address, port, cert_file = tls_http_server
    with app.app_context():
        connection = pinned_http_connection(
            "https", "localhost", port, context=ssl.create_default_context(cafile=str(cert_file)), timeout=10
        )
        assert connection.pinned_address == address
        connection.request("GET", "/")
        assert connection.sock.getpeername()[0] == address
        assert connection.sock.server_hostname == "localhost"
        answer = connection.getresponse()
        assert answer.read() == f"localhost:{port}".encode(), "the Host header keeps the name"
        connection.close()

        stranger, _key = _certificate(tmp_path, "hooks.example.com")
        other = pinned_http_connection(
            "https", "localhost", port, context=ssl.create_default_context(cafile=str(stranger)), timeout=10
        )
        with pytest.raises(ssl.SSLCertVerificationError):
            other.request("GET", "/")
        other.close()


def test_http_never_connects_to_a_refused_address_or_an_unknown_scheme(strict, tls_http_server):
    from core.netcheck import RefusedAddress, pinned_http_connection

    _address, port, _cert = tls_http_server
    with pytest.raises(RefusedAddress):
        pinned_http_connection("https", "localhost", port, timeout=10)
    with pytest.raises(ValueError):
        pinned_http_connection("ftp", "localhost", port, timeout=10)
