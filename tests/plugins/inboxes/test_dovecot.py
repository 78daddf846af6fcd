"""The throwaway Dovecot: our own config on free loopback ports, users, delivery, stop and restart."""

from __future__ import annotations

import imaplib
import poplib
import socket
import ssl

import pytest

from plugins.inboxes import dovecot as dovecot_module
from plugins.inboxes.dovecot import DEMO_USER, DovecotMissing, DovecotServer, start_demo
from tests.plugins.inboxes.conftest import _subject, simple_message


def _greeting(host: str, port: int, context: ssl.SSLContext | None = None) -> bytes:
    with socket.create_connection((host, port), timeout=5) as sock:
        if context is not None:
            with context.wrap_socket(sock, server_hostname="localhost") as tls:
                return tls.recv(64)
        return sock.recv(64)


def test_every_protocol_answers_on_its_own_loopback_port(dovecot):
    assert len(set(dovecot.ports.values())) == 4
    context = ssl.create_default_context(cafile=str(dovecot.ca_file))
    assert _greeting(dovecot.host, dovecot.ports["imap"]).startswith(b"* OK")
    assert _greeting(dovecot.host, dovecot.ports["imaps"], context).startswith(b"* OK")
    assert _greeting(dovecot.host, dovecot.ports["pop3"]).startswith(b"+OK")
    assert _greeting(dovecot.host, dovecot.ports["pop3s"], context).startswith(b"+OK")
    assert "/etc/dovecot" not in dovecot.config_file.read_text()


def test_starttls_and_logins_work_with_the_throwaway_ca(dovecot, mailbox):
    context = ssl.create_default_context(cafile=str(dovecot.ca_file))
    imap = imaplib.IMAP4(dovecot.host, dovecot.ports["imap"])
    imap.starttls(context)
    assert imap.login(mailbox.name, mailbox.password)[0] == "OK"
    imap.logout()
    pop = poplib.POP3(dovecot.host, dovecot.ports["pop3"])
    pop.stls(context)
    pop.user(mailbox.name)
    assert pop.pass_(mailbox.password).startswith(b"+OK")
    pop.quit()


def test_maildir_delivery_and_imap_append_both_reach_the_mailbox(dovecot, mailbox):
    dovecot.deliver(mailbox, simple_message("written into the maildir"))
    dovecot.deliver(mailbox, simple_message("already read"), seen=True)
    uid = dovecot.append(mailbox, simple_message("appended"), folder="Soporte/Año")
    inbox = dovecot.messages(mailbox)
    seen = {_subject(m["raw"]): "\\Seen" in m["flags"] for m in inbox.values()}
    assert seen == {"written into the maildir": False, "already read": True}
    assert uid == 1 and list(dovecot.messages(mailbox, "Soporte/Año")) == [1]


def test_a_second_server_runs_beside_the_first_on_other_ports(dovecot):
    with DovecotServer() as other:
        assert not set(other.ports.values()) & set(dovecot.ports.values())
        user = other.add_user("solo@example.test", "pw")
        other.deliver(user, simple_message("hola"))
        assert len(other.messages(user)) == 1
    with pytest.raises(OSError):
        socket.create_connection((other.host, other.ports["imap"]), timeout=2).close()


def test_stop_and_restart_keep_the_mail_and_the_ports(tmp_path):
    with DovecotServer() as server:
        user = server.add_user("keep@example.test", "pw")
        server.deliver(user, simple_message("survives a restart"))
        ports = dict(server.ports)
        server.stop()
        with pytest.raises(OSError):
            socket.create_connection((server.host, ports["imap"]), timeout=2).close()
        server.start()
        assert server.ports == ports
        assert len(server.messages(user)) == 1
        root = server.root
    assert not root.exists()  # it chose its own folder: cleanup removed it


def test_demo_server_seeds_its_mailbox_once(tmp_path):
    ports = dict(zip(("imap", "imaps", "pop3", "pop3s"), dovecot_module.free_ports(4), strict=True))
    server = start_demo(tmp_path / "instance", ports=ports)
    try:
        assert server is not None and server.ports == ports
        assert len(server.messages(DEMO_USER)) == 3
        server.stop()
    finally:
        server.cleanup()
    again = start_demo(tmp_path / "instance", ports=ports)
    try:
        assert len(again.messages(DEMO_USER)) == 3  # not seeded twice
    finally:
        again.cleanup()


def test_a_machine_without_dovecot_is_told_how_to_install_it(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(dovecot_module, "_SEARCH_PATH", str(tmp_path))  # an empty PATH: nothing installed
    with pytest.raises(DovecotMissing, match="apt-get install -y dovecot-imapd dovecot-pop3d"):
        DovecotServer()
    assert start_demo(tmp_path / "instance") is None
    assert "apt-get install -y dovecot-imapd dovecot-pop3d" in caplog.text
    assert dovecot_module.main(["--instance", str(tmp_path / "instance")]) == 1
