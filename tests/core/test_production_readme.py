"""The README's production steps, followed literally: a fresh PostgreSQL database, gunicorn, a worker.

The shell block of "Production, step by step" is run as written, with only its step 0 (the values
a newcomer chooses) given this machine's values: PostgreSQL on 127.0.0.1:5432 (user postgres, trust
authentication), the suite's Redis, folders and a port of this test. Then the operator logs in, and
the administrator the steps invited accepts the invitation the worker delivered and logs in too.
"""

from __future__ import annotations

import contextlib
import email
import http.client
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import uuid
from email import policy
from urllib.parse import urlencode, urlsplit

import pytest

from core.config import PROJECT_ROOT
from tests.conftest import require
from tests.workers import wait_for

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SECTION = "### Production, step by step"


def production_block() -> str:
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split(SECTION, 1)[1]
    return section.split("```sh\n", 1)[1].split("\n```", 1)[0]


def with_values(block: str, values: dict[str, str]) -> str:
    """The block with the exports of its step 0 set to ``values``; every other line as written."""
    head, rest = block.split("\n# 1.", 1)
    lines = []
    for line in head.splitlines():
        if line.startswith("export "):
            names = re.findall(r"(?:^export |\s)([A-Z_]+)=", line.split("  #", 1)[0])
            assert names and set(names) <= set(values), f"step 0 sets {names}: give this test a value for each"
            line = "export " + " ".join(f"{name}={shlex.quote(values[name])}" for name in names)
        lines.append(line)
    return "\n".join(lines) + "\n# 1." + rest + "\n"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _postgres_reachable() -> bool:
    try:
        import psycopg

        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", connect_timeout=3):
            return True
    except Exception:
        return False


class Browser:
    """Just enough of a browser for a Secure session cookie over plain HTTP on loopback."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, dict, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Host": "ventanilla.example.com"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key] = rest.split(";", 1)[0]
        connection.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, text

    def post_form(self, path: str, fields: dict) -> tuple[int, dict, str]:
        status, _headers, page = self.request("GET", path)
        assert status == 200, f"GET {path}: {status}"
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
            r'name="csrf_token" value="([^"]+)"', page
        )
        assert token, f"no CSRF token on {path}"
        return self.request("POST", path, {**fields, "csrf_token": token.group(1)})


def _answers(browser: Browser, path: str) -> bool:
    """Whether ``path`` answers 200; False while nothing listens yet."""
    try:
        return browser.request("GET", path)[0] == 200
    except OSError:
        return False


def _drop(database: str, roles: list[str]) -> None:
    import psycopg

    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        for role in roles:
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_the_production_steps_of_the_readme_run_as_written_and_people_log_in(redis_url, tmp_path):
    require(shutil.which("psql") is not None, "the PostgreSQL client psql is not installed")
    require(_postgres_reachable(), "PostgreSQL is not reachable at 127.0.0.1:5432 as user postgres")
    suffix = uuid.uuid4().hex[:10]
    database, owner, app_role = f"vt_readme_{suffix}", f"vt_readme_owner_{suffix}", f"vt_readme_app_{suffix}"
    port = _free_port()
    instance = tmp_path / "instance"
    values = {
        "PGHOST": "127.0.0.1",
        "PGADMIN": "postgres",
        "DB_NAME": database,
        "DB_OWNER": owner,
        "DB_APP": app_role,
        "DB_OWNER_PASSWORD": "owner-pw",
        "DB_APP_PASSWORD": "app-pw",
        "REDIS_URL": redis_url,
        "VENTANILLA_PUBLIC_URL": "https://ventanilla.example.com",
        "VENTANILLA_INSTANCE": str(instance),
        "VENTANILLA_FILES_DIR": str(instance / "files"),
        "VENTANILLA_BIND": f"127.0.0.1:{port}",
        "VENTANILLA_TRUSTED_PROXIES": "1",
        "OPERATOR_EMAIL": "ops@example.com",
        "OPERATOR_PASSWORD": "operator-password-1",
    }
    script = tmp_path / "production.sh"
    script.write_text(with_values(production_block(), values))
    # A newcomer's shell: none of this suite's settings.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("VENTANILLA_", "DATABASE_", "SMTP_", "PG", "FLASK_", "TEST_", "REDIS_", "PYTEST"))
        and key not in {"SECRET_KEY", "MAIL_FROM", "VIRTUAL_ENV", "CI"}
    }
    log = tmp_path / "steps.log"
    with log.open("w") as output:
        steps = subprocess.Popen(
            ["bash", "-e", str(script)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: gunicorn and the worker end with it
        )
    try:
        assert steps.wait(timeout=600) == 0, f"the steps failed:\n{log.read_text()[-4000:]}"
        operator = Browser(port)
        wait_for(lambda: _answers(operator, "/operator/login"), 90, "gunicorn", log)
        status, headers, _page = operator.post_form(
            "/operator/login", {"email": "ops@example.com", "password": "operator-password-1"}
        )
        assert status == 302 and headers["location"].endswith("/operator/"), "the operator logs in"
        assert operator.request("GET", "/operator/")[0] == 200

        outbox = instance / "outbox"
        letter = wait_for(lambda: sorted(outbox.glob("*.eml")), 60, "the worker to deliver the invitation", log)[0]
        message = email.message_from_bytes(letter.read_bytes(), policy=policy.default)
        assert message["To"] == "ana@acme.es"
        link = re.search(r"https?://\S+", message.get_body(("plain",)).get_content()).group(0)
        assert link.startswith("https://ventanilla.example.com/acme/invitation/"), "links use the public URL"
        ana = Browser(port)
        status, _headers, _page = ana.post_form(
            urlsplit(link).path, {"password": "ana-password-1", "confirm": "ana-password-1"}
        )
        assert status == 302
        status, headers, _page = ana.post_form("/acme/login", {"email": "ana@acme.es", "password": "ana-password-1"})
        assert status == 302 and headers["location"].endswith("/acme/"), "the tenant's administrator logs in"
        assert ana.request("GET", "/acme/users/")[0] == 200
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(steps.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.killpg(steps.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            os.killpg(steps.pid, signal.SIGKILL)
        _drop(database, [owner, app_role])


def test_step_0_is_the_only_part_given_other_values():
    block = production_block()
    changed = with_values(block, dict.fromkeys(re.findall(r"([A-Z_]+)=", block.split("\n# 1.", 1)[0]), "x"))
    assert changed.split("\n# 1.", 1)[1] == block.split("\n# 1.", 1)[1] + "\n"
    with pytest.raises(AssertionError):
        with_values(block, {})
