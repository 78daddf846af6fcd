"""Where accepted files live: per tenant, outside the web root, content-addressed; thumbnails beside
them; bytes removed only when no record of the tenant refers to them any more."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from core.extensions import db
from core.files.models import StoredFile
from core.files.services import accept_image_or_pdf, delete_stored_file, thumbnail
from core.files.store import LocalFileStore, get_store
from tests.core.files import samples


def _objects(app, tenant) -> list[str]:
    folder = Path(app.config["FILES_DIR"]) / str(tenant.id)
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_files_live_outside_the_web_root_in_a_folder_per_tenant(app, acme, acting):
    with acting(acme):
        stored = accept_image_or_pdf(samples.pdf(), "a.pdf")
        path = get_store().path(acme.id, stored.key)
    assert path == Path(app.config["INSTANCE_PATH"]) / "files" / str(acme.id) / stored.key[:2] / stored.key
    assert Path(app.static_folder) not in path.parents


def test_a_file_of_one_tenant_is_not_reachable_from_another(app, factory, acme, acting):
    from tenants.context import TenantMismatch

    other = factory.tenant("globex", language="en")
    with acting(acme):
        stored = accept_image_or_pdf(samples.pdf(), "acme.pdf")
        db.session.commit()
        file_id, key = stored.id, stored.key
    with acting(other):
        assert db.session.get(StoredFile, file_id) is None
        assert db.session.scalar(select(StoredFile).where(StoredFile.key == key)) is None
        assert not get_store().exists(other.id, key)
        with pytest.raises(TenantMismatch):
            accept_image_or_pdf(samples.pdf(), "sneaky.pdf", tenant_id=acme.id)
    with acting(acme):
        assert db.session.get(StoredFile, file_id).original_name == "acme.pdf"


def test_the_same_bytes_in_two_tenants_are_stored_once_per_tenant(app, factory, acme, acting):
    other = factory.tenant("globex", language="en")
    upload = samples.pdf()
    with acting(acme):
        key = accept_image_or_pdf(upload, "a.pdf").key
        db.session.commit()
    with acting(other):
        assert accept_image_or_pdf(upload, "b.pdf").key == key
        db.session.commit()
    assert _objects(app, acme) == _objects(app, other) == [key]


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path):
    store = LocalFileStore(tmp_path)
    key = store.save(7, b"first")
    assert store.save(7, b"first") == key
    assert store.read(7, key) == b"first" and store.exists(7, key)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [key]
    with pytest.raises(ValueError):
        store.open(7, "../../etc/passwd")
    with pytest.raises(ValueError):
        store.save_variant(7, key, "../x", b"")
    store.delete(7, key)
    assert not store.exists(7, key)
    store.delete(7, key)  # deleting what is gone is not an error


def test_an_image_gets_a_jpeg_thumbnail_cached_beside_it(app, acme, acting):
    with acting(acme):
        stored = accept_image_or_pdf(samples.png(samples.photo(800, 600)), "plan.png")
        small = thumbnail(stored)
        again = thumbnail(stored, 256)
        tiny = thumbnail(stored, 64)
        key = stored.key
    image = Image.open(io.BytesIO(small))
    assert (image.format, image.size) == ("JPEG", (256, 192))
    assert Image.open(io.BytesIO(tiny)).size == (64, 48)
    assert again == small
    assert _objects(app, acme) == sorted([key, f"{key}.thumb256", f"{key}.thumb64"])


def test_a_pdf_has_no_thumbnail(acme, acting):
    with acting(acme):
        stored = accept_image_or_pdf(samples.pdf(), "a.pdf")
        with pytest.raises(ValueError):
            thumbnail(stored)


def test_bytes_go_when_the_last_record_referring_to_them_is_deleted(app, acme, acting):
    upload = samples.png()
    with acting(acme):
        first = accept_image_or_pdf(upload, "a.png")
        second = accept_image_or_pdf(upload, "b.png")
        thumbnail(first)
        db.session.commit()
        key = first.key
        delete_stored_file(first)
        db.session.commit()
        assert _objects(app, acme) == sorted([key, f"{key}.thumb256"])
        delete_stored_file(second)
        assert _objects(app, acme) != []  # not before the commit
        db.session.commit()
    assert _objects(app, acme) == []


def test_a_rolled_back_deletion_keeps_the_bytes(app, acme, acting):
    with acting(acme):
        stored = accept_image_or_pdf(samples.pdf(), "a.pdf")
        db.session.commit()
        file_id, key = stored.id, stored.key
        delete_stored_file(stored)
        db.session.rollback()
        db.session.commit()
        assert db.session.get(StoredFile, file_id) is not None
    assert _objects(app, acme) == [key]
