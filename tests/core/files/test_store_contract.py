"""The storage interfaces' contract, proved on both backends: the local folder and an S3-compatible
server on loopback (the same tests, one parameter). What one process stores, another reads."""

from __future__ import annotations

import hashlib
import os

import pytest

from core.files.store import LocalFileStore, LocalNamedStore
from tests.core.files.s3server import bucket_keys, configured, s3_endpoint, s3_settings  # noqa: F401


@pytest.fixture(params=["local", "s3"])
def backend(request, app, tmp_path):
    """``(file store, named store "outbox", settings)`` of one backend, built from the configuration
    as the application builds them."""
    from core.files.store import get_named_store, get_store

    if request.param == "local":
        settings = {"FILES_STORE": "local", "FILES_DIR": str(tmp_path / "files"), "OUTBOX_DIR": str(tmp_path / "out")}
    else:
        settings = request.getfixturevalue("s3_settings")
    with configured(app, settings):
        yield get_store(app), get_named_store("outbox", app), settings


def test_a_file_is_stored_once_per_tenant_under_its_content_hash(backend):
    store, _, _ = backend
    key = store.save(7, b"first")
    assert key == hashlib.sha256(b"first").hexdigest()
    assert store.save(7, b"first") == key
    assert store.read(7, key) == b"first" and store.exists(7, key)
    assert not store.exists(8, key), "another tenant does not see it"
    with pytest.raises(FileNotFoundError):
        store.open(8, key)


def test_variants_live_beside_their_object_and_go_with_it(backend):
    store, _, _ = backend
    key = store.save(7, b"photo")
    other = store.save(7, b"another photo")
    store.save_variant(7, key, "thumb256", b"small")
    assert store.read(7, key, "thumb256") == b"small" and store.exists(7, key, "thumb256")
    assert not store.exists(7, other, "thumb256")
    store.delete(7, key)
    assert not store.exists(7, key) and not store.exists(7, key, "thumb256")
    assert store.read(7, other) == b"another photo", "only that object's files go"
    store.delete(7, key)  # deleting what is gone is not an error
    with pytest.raises(FileNotFoundError):
        store.open(7, key, "thumb256")


def test_a_large_file_opens_as_a_seekable_file(backend):
    store, _, _ = backend
    data = os.urandom(3 * 1024 * 1024 + 17)
    key = store.save(7, data)
    with store.open(7, key) as handle:
        handle.seek(0, 2)
        assert handle.tell() == len(data)
        handle.seek(1024)
        assert handle.read(10) == data[1024:1034]
        handle.seek(0)
        assert hashlib.sha256(handle.read()).hexdigest() == key


@pytest.mark.parametrize(
    ("tenant", "key", "variant"), [(7, "../../etc/passwd", None), (0, "a" * 64, None), (7, "a" * 64, "../x")]
)
def test_bad_keys_tenants_and_variants_are_refused(backend, tenant, key, variant):
    store, _, _ = backend
    with pytest.raises(ValueError):
        store.open(tenant, key, variant)
    with pytest.raises(ValueError):
        store.save_variant(tenant, key, variant or "thumb", b"")


def test_named_objects_are_read_back_whole_with_their_size(backend):
    _, named, _ = backend
    named.put("20260101T000000000000-aa.eml", b"Subject: one\r\n\r\nbody")
    info, data = named.get("20260101T000000000000-aa.eml")
    assert data == b"Subject: one\r\n\r\nbody"
    assert (info.name, info.size) == ("20260101T000000000000-aa.eml", len(data)) and info.modified.tzinfo
    assert named.heads(["20260101T000000000000-aa.eml", "gone.eml"], 9) == {
        "20260101T000000000000-aa.eml": b"Subject: "
    }
    named.delete("20260101T000000000000-aa.eml")
    named.delete("20260101T000000000000-aa.eml")
    with pytest.raises(FileNotFoundError):
        named.get("20260101T000000000000-aa.eml")
    for bad in ("../x.eml", ".hidden.eml", "a/b.eml", ""):
        with pytest.raises(ValueError):
            named.put(bad, b"x")


def test_named_objects_list_newest_first_a_page_at_a_time(backend):
    _, named, _ = backend
    # Names of different lengths, some the start of others: the order is the names' order, reversed.
    names = [f"2026010{d}T0000000000{n:02d}-{tag}.eml" for d in (1, 2) for n in range(7) for tag in ("a", "a1", "b")]
    names += ["2026", "2026.eml", "2026-x"]
    for name in names:
        named.put(name, name.encode())
    seen, cursor, pages = [], None, 0
    while True:
        page, cursor = named.list(cursor, 4)
        pages += 1
        assert len(page) == 4 or cursor is None
        seen += [info.name for info in page]
        if cursor is None:
            break
    assert seen == sorted(names, reverse=True)
    assert pages == -(-len(names) // 4)
    assert [i.name for i in named.list("20260102T000000000003-a.eml", 2)[0]] == [
        "20260102T000000000002-b.eml",
        "20260102T000000000002-a1.eml",
    ]
    assert named.list("0", 5) == ([], None), "nothing sorts before it"


def test_an_empty_store_lists_nothing(backend):
    _, named, _ = backend
    assert named.list() == ([], None)


def test_local_backends_are_folders(app, tmp_path):
    from core.files.store import get_named_store, get_store

    with configured(app, {"FILES_STORE": "local", "FILES_DIR": str(tmp_path / "f"), "OUTBOX_DIR": str(tmp_path / "o")}):
        assert isinstance(get_store(app), LocalFileStore)
        named = get_named_store("outbox", app)
        assert isinstance(named, LocalNamedStore)
        named.put("x.eml", b"x")
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["x.eml"], "no partial file is left"


def test_s3_keys_carry_the_prefix_the_tenant_and_a_readable_name(app, s3_settings, s3_endpoint):  # noqa: F811
    from core.files.store import get_named_store, get_store

    with configured(app, s3_settings):
        key = get_store(app).save(42, b"bytes")
        get_store(app).save_variant(42, key, "thumb128", b"t")
        get_named_store("outbox", app).put("20260101T000000000000-ab.eml", b"x")
    keys = bucket_keys(s3_endpoint, s3_settings["S3_BUCKET"])
    assert f"site-a/files/42/{key[:2]}/{key}" in keys and f"site-a/files/42/{key[:2]}/{key}.thumb128" in keys
    (outbox_key,) = [k for k in keys if k.startswith("site-a/outbox/")]
    assert outbox_key.endswith("~20260101T000000000000-ab.eml")
