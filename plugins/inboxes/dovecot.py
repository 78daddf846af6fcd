"""A throwaway Dovecot 2.3 of our own: for the tests, the demo (``make run``) and the benchmark.

It runs the system's ``dovecot`` binary (``apt-get install -y dovecot-imapd dovecot-pop3d``) in the
foreground with a configuration written into a folder of its own — never ``/etc/dovecot``, never the
system service — listening on loopback only: IMAP (with STARTTLS), IMAPS, POP3 (with STLS) and POP3S,
on free ports chosen at start (or fixed ones), with a certificate signed by a throwaway CA
(``ca_file``), users in a passwd-file and mail in maildirs. Messages are put into a mailbox by
writing into its maildir (``deliver``, fast, for bulk) or with IMAP APPEND (``append``).

Run as root, Dovecot refuses UID 0 for mail: mail then belongs to ``nobody``, and the data folder
must be reachable by it (the tests and the benchmark use a folder under /tmp; the demo falls back to
one when ``instance/`` is not reachable).

``python -m plugins.inboxes.dovecot --instance instance`` runs the demo's server until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import grp
import hashlib
import ipaddress
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

INSTALL_HINT = "Dovecot is not installed: apt-get install -y dovecot-imapd dovecot-pop3d"
PORT_NAMES = ("imap", "imaps", "pop3", "pop3s")
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/sbin"])


class DovecotMissing(RuntimeError):
    def __init__(self) -> None:
        super().__init__(INSTALL_HINT)


class DovecotFailed(RuntimeError):
    """Dovecot did not start (or stop); the message ends with the tail of its log."""


def find_dovecot() -> str | None:
    """The path of the ``dovecot`` binary, or None when it is not installed."""
    return shutil.which("dovecot", path=_SEARCH_PATH)


def find_doveadm() -> str | None:
    return shutil.which("doveadm", path=_SEARCH_PATH)


def dovecot_version(binary: str | None = None) -> str:
    binary = binary or find_dovecot()
    if not binary:
        raise DovecotMissing()
    return subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout.split()[0]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports free on ``host`` right now (the kernel's choice, so parallel runs differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


# --- certificates -----------------------------------------------------------------------------


def make_certificates(folder: Path, names: tuple[str, ...] = ("localhost",), ips: tuple[str, ...] = ("127.0.0.1",)):
    """A throwaway CA and a server certificate it signed for ``names`` and ``ips``.

    Returns the paths ``(ca.pem, server.pem, server.key)``. EC keys: quick to make.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Ventanilla throwaway test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else ips[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


# --- the server -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MailUser:
    name: str
    password: str
    home: Path

    @property
    def maildir(self) -> Path:
        return self.home / "Maildir"


def _reachable_by(path: Path, uid: int, gid: int) -> bool:
    """Can ``uid``/``gid`` traverse every folder down to ``path``?"""
    path = path.resolve()
    for folder in [*reversed(path.parents), path]:
        info = folder.stat()
        if info.st_uid == uid:
            bit = stat.S_IXUSR
        elif info.st_gid == gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return False
    return True


class DovecotServer:
    """One Dovecot master process and its folder. ``start()``/``stop()``, or use it as a context manager."""

    def __init__(
        self,
        root: Path | str | None = None,
        *,
        host: str = "127.0.0.1",
        ports: dict[str, int] | None = None,
        cert_names: tuple[str, ...] = ("localhost",),
        binary: str | None = None,
        tls: bool = True,
        plaintext_auth: bool = True,
        inbox_prefix: bool = False,
    ) -> None:
        self.binary = binary or find_dovecot()
        if not self.binary:
            raise DovecotMissing()
        self._own_root = root is None
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="vdc-"))
        self.host = host
        self.fixed_ports = dict(ports) if ports else None
        self.ports: dict[str, int] = dict(ports) if ports else {}
        self.cert_names = cert_names
        self.tls = tls  # False: no IMAPS/POP3S ports and no STARTTLS (an old or badly set-up server)
        self.plaintext_auth = plaintext_auth  # False: passwords only over TLS (Dovecot's default)
        self.port_names = PORT_NAMES if tls else ("imap", "pop3")
        # True: every folder lives under "INBOX." (separator "."), as on Courier, Cyrus and cPanel.
        self.inbox_prefix = inbox_prefix
        self.users: dict[str, MailUser] = {}
        self.process: subprocess.Popen | None = None
        self._run_dir: Path | None = None
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            self.system_user = "nobody"
            self.system_group = grp.getgrgid(nobody.pw_gid).gr_name
            self.mail_uid, self.mail_gid = nobody.pw_uid, nobody.pw_gid
        else:
            me = pwd.getpwuid(os.getuid())
            self.system_user = me.pw_name
            self.system_group = grp.getgrgid(os.getgid()).gr_name
            self.mail_uid, self.mail_gid = os.getuid(), os.getgid()
        self._prepare()

    # --- files ---

    def _prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self.root.chmod(0o711)
        (self.root / "state").mkdir(exist_ok=True)
        self.mail_root.mkdir(exist_ok=True)
        self._own(self.mail_root)
        self.mail_root.chmod(0o711)
        tls = self.root / "tls"
        if not (tls / "ca.pem").exists():
            make_certificates(tls, names=self.cert_names)
        self.ca_file, self.cert_file, self.key_file = tls / "ca.pem", tls / "server.pem", tls / "server.key"
        self.passwd_dir.mkdir(exist_ok=True)
        for entry in sorted(self.passwd_dir.iterdir()):
            name, _, rest = entry.read_text().partition(":")
            if entry.name == name and rest.startswith("{PLAIN}"):
                password = rest[len("{PLAIN}") :].split(":", 1)[0]
                self.users[name] = MailUser(name, password, self.mail_root / _home_name(name))

    @property
    def mail_root(self) -> Path:
        return self.root / "mail"

    @property
    def passwd_dir(self) -> Path:
        return self.root / "users"

    @property
    def config_file(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def log_file(self) -> Path:
        return self.root / "dovecot.log"

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            os.chown(path, self.mail_uid, self.mail_gid)

    def _listener(self, name: str, ssl: bool = False) -> str:
        if name not in self.port_names:
            return ""
        return (
            f"  inet_listener {name} {{\n    address = {self.host}\n    port = {self.ports[name]}\n"
            + ("    ssl = yes\n" if ssl else "")
            + "  }\n"
        )

    def _namespace(self) -> str:
        if self.inbox_prefix:
            return "  separator = .\n  prefix = INBOX.\n"
        return "  separator = /\n"

    def _config(self) -> str:
        chroot = "" if os.geteuid() == 0 else "  chroot =\n"
        return f"""# Written by plugins/inboxes/dovecot.py: a throwaway server on loopback. Do not edit.
base_dir = {self._run_dir}/
state_dir = {self.root}/state/
log_path = {self.log_file}
protocols = imap pop3
listen = {self.host}
ssl = {"yes" if self.tls else "no"}
ssl_cert = <{self.cert_file}
ssl_key = <{self.key_file}
disable_plaintext_auth = {"no" if self.plaintext_auth else "yes"}
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = {min(self.mail_uid, 500)}
first_valid_gid = {min(self.mail_gid, 500)}
default_internal_user = {self.system_user}
default_internal_group = {self.system_group}
default_login_user = {self.system_user}
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd_dir}/%u
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.passwd_dir}/%u
}}
namespace inbox {{
  inbox = yes
{self._namespace()}}}
protocol imap {{
  mail_max_userip_connections = 200
}}
protocol pop3 {{
  mail_max_userip_connections = 200
}}
service imap-login {{
{chroot}{self._listener("imap")}{self._listener("imaps", ssl=True)}}}
service pop3-login {{
{chroot}{self._listener("pop3")}{self._listener("pop3s", ssl=True)}}}
# No growing delay for an address after failed logins (the tests fail logins on purpose).
service anvil {{
{chroot}  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""

    # --- users and mail ---

    def add_user(self, name: str, password: str) -> MailUser:
        """A mailbox ``name`` (an address, say) with ``password``; Dovecot re-reads the file at next login."""
        if not re.fullmatch(r"[A-Za-z0-9._+@-]+", name) or name.startswith(".") or ":" in password or "\n" in password:
            raise ValueError("a user name of letters, digits and . _ + @ - only; no ':' or newline in a password")
        user = MailUser(name, password, self.mail_root / _home_name(name))
        self.users[name] = user
        # One passwd-file per user: Dovecot looks a changed file up again at most once a second, a new
        # file at once (a user added right after another one logged in would be refused for a second).
        self.passwd_dir.mkdir(exist_ok=True)
        entry = f"{user.name}:{{PLAIN}}{user.password}:{self.mail_uid}:{self.mail_gid}::{user.home}\n"
        partial = self.passwd_dir / f".{user.name}.part"
        partial.write_text(entry)
        os.replace(partial, self.passwd_dir / user.name)
        for folder in (user.home, user.maildir, *(user.maildir / d for d in ("cur", "new", "tmp"))):
            folder.mkdir(mode=0o700, exist_ok=True)
            self._own(folder)
        return user

    def _user(self, user: MailUser | str) -> MailUser:
        return user if isinstance(user, MailUser) else self.users[user]

    def folder_path(self, user: MailUser | str, folder: str = "INBOX") -> Path:
        """The maildir of ``folder`` (Maildir++: ``.Sub.Folder`` beside the inbox)."""
        user = self._user(user)
        if folder.upper() == "INBOX":
            return user.maildir
        if self.inbox_prefix and folder.upper().startswith("INBOX."):
            folder = folder[len("INBOX.") :]
        return user.maildir / ("." + folder.replace("/", "."))

    _counter = 0

    def deliver(self, user: MailUser | str, raw: bytes, folder: str = "INBOX", *, seen: bool = False) -> Path:
        """Put ``raw`` into ``folder`` by writing into the maildir, as a local delivery agent does."""
        path = self.folder_path(user, folder)
        if not path.exists():
            for sub in (path, path / "cur", path / "new", path / "tmp"):
                sub.mkdir(mode=0o700, exist_ok=True)
                self._own(sub)
            (path / "maildirfolder").touch()
            self._own(path / "maildirfolder")
        DovecotServer._counter += 1
        now = time.time()
        unique = f"{int(now)}.M{int(now % 1 * 1e6)}P{os.getpid()}Q{DovecotServer._counter}.{socket.gethostname()}"
        name = f"{unique},S={len(raw)}"
        temporary = path / "tmp" / name
        temporary.write_bytes(raw)
        self._own(temporary)
        final = path / "cur" / f"{name}:2,S" if seen else path / "new" / name
        os.rename(temporary, final)
        return final

    def imap(self, user: MailUser | str):
        """A logged-in IMAPClient on the plain port (the caller logs out)."""
        from imapclient import IMAPClient

        user = self._user(user)
        client = IMAPClient(self.host, self.ports["imap"], ssl=False, timeout=30)
        client.login(user.name, user.password)
        return client

    def append(self, user: MailUser | str, raw: bytes, folder: str = "INBOX", flags: tuple = ()) -> int:
        """APPEND ``raw`` to ``folder`` (created when missing); returns its UID."""
        client = self.imap(user)
        try:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            response = client.append(folder, raw, flags=flags)
        finally:
            with contextlib.suppress(Exception):
                client.logout()
        match = re.search(rb"APPENDUID \d+ (\d+)", response or b"")
        return int(match.group(1)) if match else 0

    def messages(self, user: MailUser | str, folder: str = "INBOX") -> dict[int, dict]:
        """What ``folder`` holds now: ``{uid: {"flags": (...), "raw": bytes}}`` (read-only)."""
        client = self.imap(user)
        try:
            if not client.folder_exists(folder):
                return {}
            client.select_folder(folder, readonly=True)
            uids = client.search(["ALL"])
            found = client.fetch(uids, ["FLAGS", "BODY.PEEK[]"]) if uids else {}
            return {
                uid: {"flags": tuple(f.decode() for f in data[b"FLAGS"]), "raw": bytes(data[b"BODY[]"])}
                for uid, data in found.items()
            }
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def kick(self, user: MailUser | str) -> None:
        """Drop every connection of ``user`` at once (``doveadm kick``): the server stays up."""
        doveadm = find_doveadm()
        if not doveadm:
            raise DovecotMissing()
        done = subprocess.run(
            [doveadm, "-c", str(self.config_file), "kick", self._user(user).name], capture_output=True, text=True
        )
        if done.returncode not in (0, 68):  # 68 (EX_NOUSER): nobody was connected, nothing to drop
            raise DovecotFailed(f"doveadm kick failed: {done.stderr.strip() or done.stdout.strip()}")

    # --- process ---

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 15.0, attempts: int = 5) -> DovecotServer:
        """Start and wait until every port greets; free ports are chosen anew when one was taken."""
        if self.running:
            return self
        if self._run_dir is None:
            # Socket paths must stay short (< 108 bytes): the runtime folder lives under /tmp.
            self._run_dir = Path(tempfile.mkdtemp(prefix="vdc-run-"))
            self._run_dir.chmod(0o755)
        for attempt in range(attempts):
            if not self.fixed_ports and (attempt or not self.ports):
                self.ports = dict(zip(self.port_names, free_ports(len(self.port_names), self.host), strict=True))
            self.config_file.write_text(self._config())
            offset = self.log_file.stat().st_size if self.log_file.exists() else 0
            self.process = subprocess.Popen(
                [self.binary, "-F", "-c", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=(self.root / "dovecot.stderr").open("ab"),
                start_new_session=True,  # Ctrl-C in a terminal reaches us, not it: we stop it ourselves
            )
            if self._wait_ready(timeout):
                return self
            self._terminate()
            tail = self._log_since(offset)
            if "Address already in use" in tail and not self.fixed_ports:
                continue
            raise DovecotFailed(f"Dovecot did not start:\n{tail}")
        raise DovecotFailed("Dovecot did not start: no free ports after several attempts")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        pending = dict(self.ports)
        while pending and time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            for name, port in list(pending.items()):
                try:
                    with socket.create_connection((self.host, port), timeout=1) as sock:
                        if name.endswith("s"):  # TLS ports: a TCP accept is enough
                            pending.pop(name)
                            continue
                        sock.settimeout(2)
                        if sock.recv(64)[:1] in (b"*", b"+"):
                            pending.pop(name)
                except OSError:
                    pass
            if pending:
                time.sleep(0.05)
        return not pending

    def _log_since(self, offset: int) -> str:
        text = ""
        for path, start in ((self.log_file, offset), (self.root / "dovecot.stderr", 0)):
            if path.exists():
                with path.open("rb") as handle:
                    handle.seek(start)
                    text += handle.read().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-30:])

    def _terminate(self, timeout: float = 5.0) -> None:
        process = self.process
        if process is None:
            return
        # The whole group (ours only: the master was started in a session of its own) at once: the master
        # alone waits a second or more for its log process. A child forked while the signal went out
        # missed it and the master waits for it, so the signal is repeated until the master is gone.
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            sig = signal.SIGTERM if time.monotonic() < deadline else signal.SIGKILL
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(0.2)
        self.process = None

    def stop(self) -> None:
        """Stop the server (clients are disconnected); the mail stays for a later ``start()``."""
        self._terminate()

    def restart(self) -> None:
        """Stop and start again on the same ports."""
        self.stop()
        self.fixed_ports = self.fixed_ports or dict(self.ports)
        self.start()

    def cleanup(self) -> None:
        """Stop and remove what this server created (its folder when it chose it itself)."""
        self.stop()
        if self._run_dir is not None:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._run_dir = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # --- for the fetchers ---

    def endpoint(self, kind: str = "imaps", *, host: str = "localhost", verify: bool = True, **kwargs):
        """A fetcher ``Endpoint`` for the ``imap``/``imaps``/``pop3``/``pop3s`` port.

        The socket goes to this server's address; TLS is verified for ``host`` against the throwaway
        CA (``verify=False`` turns verification off). ``starttls=True`` secures the plain ports.
        """
        from plugins.inboxes.connectors.base import Endpoint, Security

        starttls = kwargs.pop("starttls", False)
        security = Security.SSL if kind.endswith("s") else Security.STARTTLS if starttls else Security.NONE
        port = self.ports[kind]
        return Endpoint(
            host=host,
            port=port,
            security=security,
            verify_tls=verify,
            ca_file=str(self.ca_file),
            address=(self.host, port),
            **kwargs,
        )


def _home_name(user: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", user)
    return f"{safe}-{hashlib.sha256(user.encode()).hexdigest()[:8]}"


# --- the demo ---------------------------------------------------------------------------------

DEMO_PORTS = {"imap": 10143, "imaps": 10993, "pop3": 10110, "pop3s": 10995}
DEMO_USER = "entrada@demo.test"
DEMO_PASSWORD = "demo-entrada"


def demo_ports() -> dict[str, int]:
    """The demo server's ports: ``VENTANILLA_DEMO_IMAP_PORT`` (and ``_IMAPS_``, ``_POP3_``, ``_POP3S_``) or
    10143, 10993, 10110, 10995. The demo data's mailbox uses the same."""
    chosen = dict(DEMO_PORTS)
    for name in PORT_NAMES:
        value = os.environ.get(f"VENTANILLA_DEMO_{name.upper()}_PORT")
        if value:
            chosen[name] = int(value)
    return chosen


def demo_messages() -> list[bytes]:
    """A few messages for the demo's inbound mailbox, as customers would write them."""
    from email.message import EmailMessage
    from email.utils import format_datetime, make_msgid

    samples = [
        (
            "Lucía Pérez <lucia.perez@example.com>",
            "No puedo acceder al portal",
            "Hola,\n\nDesde ayer no consigo entrar en el portal de clientes. ¿Pueden revisarlo?\n\nGracias,\nLucía",
        ),
        (
            "Marco Bianchi <marco.bianchi@example.it>",
            "Richiesta di documentazione",
            "Buongiorno,\n\nvorrei la documentazione del contratto firmato a marzo.\n\nCordiali saluti,\nMarco",
        ),
        (
            "Taller Ruiz SL <admin@tallerruiz.example>",
            "Factura de octubre duplicada",
            "Buenos días:\n\nHemos recibido dos veces la factura de octubre. Adjuntamos los dos correos.\n\nUn saludo.",
        ),
    ]
    messages = []
    for index, (sender, subject, body) in enumerate(samples):
        message = EmailMessage()
        message["From"] = sender
        message["To"] = DEMO_USER
        message["Subject"] = subject
        message["Date"] = format_datetime(dt.datetime.now(dt.UTC) - dt.timedelta(hours=3 - index))
        message["Message-ID"] = make_msgid(domain="demo.example")
        message.set_content(body)
        messages.append(message.as_bytes())
    return messages


def demo_root(instance: Path) -> Path:
    """``instance/dovecot``, or (as root, when ``nobody`` cannot reach it) a folder under /tmp."""
    root = Path(instance) / "dovecot"
    if os.geteuid() != 0:
        return root
    nobody = pwd.getpwnam("nobody")
    root.mkdir(parents=True, exist_ok=True)
    if _reachable_by(root, nobody.pw_uid, nobody.pw_gid):
        return root
    digest = hashlib.sha256(str(Path(instance).resolve()).encode()).hexdigest()[:12]
    fallback = Path(tempfile.gettempdir()) / f"ventanilla-dovecot-{digest}"
    log.info("%s is not reachable by 'nobody' (Dovecot's mail user as root): using %s", root, fallback)
    return fallback


def start_demo(instance: Path | str, ports: dict[str, int] | None = None) -> DovecotServer | None:
    """Start the demo's Dovecot with its mailbox (and a few messages the first time).

    Returns None, after logging how to install it, when Dovecot is not installed.
    Ports: ``VENTANILLA_DEMO_IMAP_PORT`` (and ``_IMAPS_``, ``_POP3_``, ``_POP3S_``) or 10143, 10993, 10110, 10995.
    """
    if not find_dovecot():
        log.warning("%s (the demo's inbound mailbox needs it)", INSTALL_HINT)
        return None
    chosen = demo_ports()
    chosen.update(ports or {})
    server = DovecotServer(demo_root(Path(instance)), ports=chosen)
    if DEMO_USER not in server.users:
        server.add_user(DEMO_USER, DEMO_PASSWORD)
    seeded = server.root / "demo-seeded"
    if not seeded.exists():
        for raw in demo_messages():
            server.deliver(DEMO_USER, raw)
        seeded.touch()
    server.start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the demo's Dovecot until Ctrl-C.")
    parser.add_argument("--instance", default="instance", help="the instance folder (default: instance)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    server = start_demo(args.instance)
    if server is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 1
    print(
        f"Dovecot for the demo on {server.host}: IMAP {server.ports['imap']} (STARTTLS), "
        f"IMAPS {server.ports['imaps']}, POP3 {server.ports['pop3']}, POP3S {server.ports['pop3s']}\n"
        f"mailbox {DEMO_USER} / {DEMO_PASSWORD}; CA certificate {server.ca_file}\nCtrl-C stops it."
    )
    try:
        while server.running:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.cleanup()  # stops it and removes its runtime folder; the mail stays in the instance
    return 0


if __name__ == "__main__":
    sys.exit(main())
