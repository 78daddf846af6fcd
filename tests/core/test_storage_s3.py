"""Web and workers on several machines: with ``FILES_STORE=s3`` uploaded files and the ``.eml``
outbox live in an S3-compatible bucket (moto's server on loopback, spoken to over HTTP), and no
process needs another's disk. A bucket that is missing or refuses the credentials says so."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from tests.conftest import login, login_operator
from tests.core.files import s3server, samples
from tests.plugins.center_certificates import conftest as certificates
from tests.plugins.center_certificates.test_portal import FUTURE, _send
from tests.workers import running_worker, wait_for, worker_environment

# Fixtures used here, defined with the S3 server and with the certificates plugin's tests.
s3_endpoint, s3_settings, use_s3 = s3server.s3_endpoint, s3server.s3_settings, s3server.use_s3
centre = certificates.centre
bucket_keys, configured = s3server.bucket_keys, s3server.configured
make_request, make_template = certificates.make_request, certificates.make_template


def _files_on_disk(app) -> list[Path]:
    folder = Path(app.config["FILES_DIR"])
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_an_upload_through_the_web_is_downloaded_from_the_bucket(app, factory, centre, use_s3, s3_endpoint):
    # The suite's folder keeps earlier tests' files: what counts is that this one adds none.
    before = set(_files_on_disk(app))
    factory.portal_user(centre.tenant, centre.client, "north@client.test")
    portal = app.test_client()
    login(portal, "acme", "north@client.test")
    certificate = make_request(app, centre.tenant, centre.client, make_template(app, centre.tenant))
    photo = samples.jpeg()
    assert _send(portal, certificate, photo, "certificado.jpg", validity=FUTURE).status_code == 302

    keys = bucket_keys(s3_endpoint, use_s3["S3_BUCKET"])
    (original,) = [k for k in keys if k.startswith(f"site-a/files/{centre.tenant.id}/")]
    download = portal.get(f"/acme/portal/certificates/{certificate}/file")
    assert download.status_code == 200 and download.mimetype == "image/jpeg"
    assert download.get_data() and download.headers["Content-Length"] == str(len(download.get_data()))
    assert original.endswith(hashlib.sha256(download.get_data()).hexdigest())
    thumbnail = portal.get(f"/acme/portal/certificates/{certificate}/thumbnail")
    assert thumbnail.status_code == 200 and thumbnail.mimetype == "image/jpeg"
    assert any(k.startswith(original + ".thumb") for k in bucket_keys(s3_endpoint, use_s3["S3_BUCKET"]))
    assert set(_files_on_disk(app)) == before, "nothing was written to the local folder"


def test_a_worker_on_another_machine_writes_the_outbox_the_console_reads(
    app,
    factory,
    client,
    tmp_path,
    use_s3,
    s3_endpoint,
):
    """The worker has an instance folder of its own (another machine's disk): the mail it delivers
    reaches the operator console through the bucket alone."""
    from core.extensions import db
    from core.mail.services import send_email
    from tenants.context import tenant_context
    from tenants.models import Tenant

    tenant = factory.tenant("acme")
    elsewhere = tmp_path / "other-machine"
    env = worker_environment(app, elsewhere, **{f"VENTANILLA_{k}": v for k, v in use_s3.items() if v is not None})
    with running_worker(env, tmp_path / "worker.log"):
        with app.app_context(), tenant_context(tenant.id):
            for n in range(3):
                row = db.session.get(Tenant, tenant.id)
                send_email(row, f"client{n}@client.test", f"Letter {n}", "test_message", "en", user={"name": "Ana"})
        wait_for(
            lambda: len([k for k in bucket_keys(s3_endpoint, use_s3["S3_BUCKET"]) if "/outbox/" in k]) == 3,
            60,
            "the worker to deliver three messages into the bucket",
        )
    assert not (elsewhere / "outbox").exists() and not Path(app.config["OUTBOX_DIR"]).exists()

    factory.operator()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login_operator(client)
    first = client.get("/operator/outbox").get_data(as_text=True)
    assert re.findall(r"Letter (\d)", first) == ["2", "1", "0"], "newest first"
    names = re.findall(r'data-file="([^"]+)"', first)
    page = client.get(f"/operator/outbox/{names[0]}").get_data(as_text=True)
    assert "client2@client.test" in page and "Hello Ana" in page
    assert client.get("/operator/outbox/20000101T000000000000-none.eml").status_code == 404


def test_the_console_pages_the_bucket_outbox_newest_first(app, factory, client, use_s3, run_jobs):
    from core.extensions import db
    from core.mail.services import send_email
    from tenants.context import tenant_context
    from tenants.models import Tenant

    tenant = factory.tenant("acme")
    with app.app_context(), tenant_context(tenant.id):
        for n in range(53):
            send_email(
                db.session.get(Tenant, tenant.id),
                f"c{n}@client.test",
                f"Number {n:02d}",
                "test_message",
                "en",
                user={"name": "R"},
            )
    run_jobs()
    factory.operator()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login_operator(client)
    first = client.get("/operator/outbox").get_data(as_text=True)
    subjects = re.findall(r"Number (\d\d)", first)
    assert subjects == [f"{n:02d}" for n in range(52, 2, -1)]
    next_link = re.search(r'href="(/operator/outbox\?after=[^"]+)"', first).group(1)
    second = client.get(next_link.replace("&amp;", "&")).get_data(as_text=True)
    assert re.findall(r"Number (\d\d)", second) == ["02", "01", "00"] and 'rel="next"' not in second


def test_a_missing_bucket_is_named_with_what_to_check(app, s3_settings):
    from core.files.store import StorageUnavailable, get_named_store, get_store

    with configured(app, {**s3_settings, "S3_BUCKET": "no-such-bucket"}):
        with pytest.raises(StorageUnavailable) as raised:
            get_store(app)
        with pytest.raises(StorageUnavailable):
            get_named_store("outbox", app)
    message = str(raised.value)
    assert "'no-such-bucket'" in message and s3_settings["S3_ENDPOINT_URL"] in message
    assert "does not exist" in message and "S3_BUCKET" in message


def test_refused_credentials_are_named_and_never_shown(app, s3_settings):
    from moto.core.authorization import enable_iam_authentication

    from core.files.store import StorageUnavailable, get_store

    wrong = {**s3_settings, "S3_ACCESS_KEY_ID": "AKIAWRONGWRONGWRONG1", "S3_SECRET_ACCESS_KEY": "very-secret-value"}
    with configured(app, wrong), enable_iam_authentication(), pytest.raises(StorageUnavailable) as raised:
        get_store(app)
    message = str(raised.value)
    assert "403" in message and "S3_ACCESS_KEY_ID" in message
    assert "very-secret-value" not in message and "very-secret-value" not in repr(raised.value)


def test_s3_without_a_bucket_name_says_which_setting_is_missing(app, s3_settings):
    from core.files.store import StorageUnavailable, get_store

    with configured(app, {**s3_settings, "S3_BUCKET": None}), pytest.raises(StorageUnavailable, match="S3_BUCKET"):
        get_store(app)


def test_the_storage_check_command_reports_each_store(app, s3_settings):
    with configured(app, s3_settings):
        result = app.test_cli_runner().invoke(args=["storage", "check"])
    assert result.exit_code == 0, result.output
    assert f"files: S3 bucket {s3_settings['S3_BUCKET']!r}" in result.output and "outbox: S3 bucket" in result.output
    assert s3_settings["S3_SECRET_ACCESS_KEY"] not in result.output
    with configured(app, {**s3_settings, "S3_BUCKET": "no-such-bucket"}):
        failed = app.test_cli_runner().invoke(args=["storage", "check"])
    assert failed.exit_code != 0 and "does not exist" in failed.output


def test_the_console_says_when_the_outbox_bucket_cannot_be_read(app, factory, client, s3_settings):
    factory.operator()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login_operator(client)
    with configured(app, {**s3_settings, "S3_BUCKET": "no-such-bucket"}):
        page = client.get("/operator/outbox")
        shown = client.get("/operator/outbox/20260101T000000000000-ab.eml", follow_redirects=True)
    assert page.status_code == 200 and "The outbox cannot be read" in page.get_data(as_text=True)
    assert "no-such-bucket" in page.get_data(as_text=True)
    assert shown.status_code == 200 and "The outbox cannot be read" in shown.get_data(as_text=True)
    assert s3_settings["S3_SECRET_ACCESS_KEY"] not in page.get_data(as_text=True)


def test_bytes_leave_the_bucket_with_the_last_record_that_uses_them(app, factory, use_s3, s3_endpoint):
    from core.extensions import db
    from core.files.services import accept_image_or_pdf, delete_stored_file, thumbnail
    from tenants.context import tenant_context

    tenant = factory.tenant("acme")
    photo = samples.png(samples.photo(400, 300))
    with app.app_context(), tenant_context(tenant.id):
        first, second = accept_image_or_pdf(photo, "a.png"), accept_image_or_pdf(photo, "b.png")
        thumbnail(first, 256)
        db.session.commit()
        delete_stored_file(first)
        db.session.commit()
        assert len(bucket_keys(s3_endpoint, use_s3["S3_BUCKET"])) == 2, "the other record keeps them"
        delete_stored_file(second)
        db.session.commit()
    assert bucket_keys(s3_endpoint, use_s3["S3_BUCKET"]) == [], "the object and its thumbnail are gone"


def test_a_local_installation_is_copied_into_the_bucket(app, factory, s3_settings, s3_endpoint, tmp_path):
    from core.files.store import LocalFileStore, LocalNamedStore

    local = {"FILES_DIR": str(tmp_path / "files"), "OUTBOX_DIR": str(tmp_path / "outbox")}
    files, outbox = LocalFileStore(local["FILES_DIR"]), LocalNamedStore(local["OUTBOX_DIR"])
    key = files.save(3, b"a scanned page")
    files.save_variant(3, key, "thumb256", b"small")
    outbox.put("20260101T000000000000-aa.eml", b"Subject: old\r\n\r\nx")
    (Path(local["FILES_DIR"]) / "3" / key[:2] / ".tmp-partial").write_bytes(b"half")
    with configured(app, {**s3_settings, **local}):
        result = app.test_cli_runner().invoke(args=["storage", "copy-local"])
        again = app.test_cli_runner().invoke(args=["storage", "copy-local"])
    assert result.exit_code == 0, result.output
    assert "1 file(s), 1 thumbnail(s), 1 outbox message(s) copied" in result.output
    assert "0 file(s), 0 thumbnail(s), 0 outbox message(s) copied" in again.output and "3 already there" in again.output
    keys = bucket_keys(s3_endpoint, s3_settings["S3_BUCKET"])
    assert f"site-a/files/3/{key[:2]}/{key}" in keys and f"site-a/files/3/{key[:2]}/{key}.thumb256" in keys
    assert any(k.endswith("~20260101T000000000000-aa.eml") for k in keys) and len(keys) == 3
