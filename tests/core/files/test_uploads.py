"""Uploads are judged by their content: images come back re-encoded and clean, PDFs are parsed in a
child process, anything else is refused with a message that says what the file looks like."""

from __future__ import annotations

import io
import time

import pytest
from PIL import ExifTags, Image
from sqlalchemy import select

from core.errors import DomainError
from core.files.kinds import JPEG, MB, PNG, UploadKind, register_kind
from core.files.services import accept_image_or_pdf, accept_upload, read_stored
from tests.core.files import samples


def refusal(call) -> str:
    with pytest.raises(DomainError) as caught:
        call()
    return str(caught.value.message)


# --- images --------------------------------------------------------------------------------


def test_a_jpeg_with_gps_and_a_motion_trailer_comes_back_reencoded_without_either(acme, acting):
    upload = samples.jpeg(exif=samples.exif_with_gps()) + samples.MOTION_TRAILER
    assert b"EOS secret body" in upload
    with acting(acme):
        stored = accept_image_or_pdf(upload, "holiday.jpg")
        kept = read_stored(stored)
    assert (stored.content_type, stored.extension, stored.original_name) == ("image/jpeg", "jpg", "holiday.jpg")
    assert (stored.width, stored.height, stored.size) == (64, 48, len(kept))
    assert kept != upload and kept.startswith(b"\xff\xd8\xff")
    assert b"ftypmp42" not in kept
    assert b"Exif" not in kept and b"EOS secret body" not in kept
    exif = Image.open(io.BytesIO(kept)).getexif()
    assert dict(exif) == {} and exif.get_ifd(ExifTags.IFD.GPSInfo) == {}


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_an_image_hiding_a_web_page_or_script_is_refused(acme, acting, fmt):
    out = io.BytesIO()
    samples.photo().save(out, fmt)
    with acting(acme):
        message = refusal(lambda: accept_image_or_pdf(out.getvalue() + samples.PAYLOAD, f"polyglot.{fmt.lower()}"))
    assert message.startswith("The image hides a web page or a script, so it was refused.")


def test_markup_in_a_jpeg_comment_or_after_a_heic_is_refused_too(acme, acting):
    out = io.BytesIO()
    samples.photo().save(out, "JPEG", comment=b"<iframe src=//evil.example>")
    with acting(acme):
        assert refusal(lambda: accept_image_or_pdf(out.getvalue(), "comment.jpg")).startswith("The image hides")
        assert refusal(lambda: accept_image_or_pdf(samples.heic() + samples.PAYLOAD, "phone.heic")).startswith(
            "The image hides"
        )


def test_pixels_that_spell_markup_by_chance_are_not_taken_for_a_hidden_page(acme, acting):
    # Compressed pixels spell "<svg " now and then (about one 5 MB photo in a hundred): only the
    # headers, metadata and what follows the image are searched for markup, never the pixels.
    spelled = b"<sVg onload=alert(1)>"
    jpeg = samples.jpeg_with_scan_bytes(spelled)
    png = samples.png_of_rows([spelled] * 4)
    assert spelled in jpeg and spelled in png
    with acting(acme):
        assert accept_image_or_pdf(jpeg, "noise.jpg").width == 200
        assert accept_image_or_pdf(png, "rows.png").width == len(spelled)


def test_the_exif_orientation_is_applied_before_the_exif_is_dropped(acme, acting):
    # Orientation 6: the camera was turned, the viewer must rotate 90° clockwise to show it upright.
    upload = samples.jpeg(samples.photo(40, 20), exif=samples.exif_with_gps(orientation=6))
    with acting(acme):
        stored = accept_image_or_pdf(upload, "turned.jpg")
        kept = Image.open(io.BytesIO(read_stored(stored)))
    assert (stored.width, stored.height) == (20, 40) and kept.size == (20, 40)
    assert ExifTags.Base.Orientation not in kept.getexif()
    # The blue corner was top-left in the sensor's frame; upright, it is top-right.
    red, _green, blue = kept.convert("RGB").getpixel((15, 2))
    assert blue > 150 and red < 100


def test_a_png_stays_png_and_loses_its_text_chunks(acme, acting):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "home address: Calle Mayor 1")
    out = io.BytesIO()
    samples.photo().save(out, "PNG", pnginfo=info)
    with acting(acme):
        stored = accept_image_or_pdf(out.getvalue() + samples.MOTION_TRAILER, "scan.PNG")
        kept = read_stored(stored)
    assert (stored.content_type, stored.original_name) == ("image/png", "scan.png")
    assert b"Calle Mayor" not in kept and b"ftypmp42" not in kept
    assert Image.open(io.BytesIO(kept)).size == (64, 48)


def test_a_real_heic_photo_is_accepted_and_becomes_jpeg(acme, acting):
    upload = samples.heic(samples.photo(80, 60))
    assert upload[4:12] == b"ftypheic"
    with acting(acme):
        stored = accept_image_or_pdf(upload, "IMG_0042.HEIC", user_id=None)
        kept = read_stored(stored)
    assert (stored.content_type, stored.extension, stored.original_name) == ("image/jpeg", "jpg", "IMG_0042.jpg")
    assert (stored.width, stored.height) == (80, 60)
    assert Image.open(io.BytesIO(kept)).format == "JPEG"


def test_an_executable_renamed_photo_jpg_is_refused_naming_what_it_looks_like(acme, acting):
    with acting(acme):
        message = refusal(lambda: accept_image_or_pdf(samples.elf_program(), "photo.jpg"))
    assert message == "The file is not a JPG, PNG, HEIC or PDF: it looks like an executable program."


def test_a_web_page_renamed_png_is_refused(acme, acting):
    page = b"<!DOCTYPE html>\n<html><body><script>document.location='https://evil.test'</script></body></html>"
    with acting(acme):
        message = refusal(lambda: accept_image_or_pdf(page, "avatar.png"))
    assert message == "The file is not a JPG, PNG, HEIC or PDF: it looks like a web page (HTML)."


def test_other_formats_are_named_in_the_refusal(acme, acting):
    import zipfile

    gif = io.BytesIO()
    samples.photo().save(gif, "GIF")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.txt", "x")
    with acting(acme):
        assert "it looks like an image in GIF format" in refusal(lambda: accept_image_or_pdf(gif.getvalue(), "a.jpg"))
        assert "it looks like a compressed archive (ZIP)" in refusal(
            lambda: accept_image_or_pdf(archive.getvalue(), "a.pdf")
        )
        assert refusal(lambda: accept_image_or_pdf(b"\x00\x01\x02\x03" * 40, "a.pdf")) == (
            "The file is not a JPG, PNG, HEIC or PDF and its type could not be recognised."
        )


def test_a_pixel_bomb_is_refused_quickly_without_decoding_it(acme, acting):
    bomb = samples.png_declaring(30000, 30000)  # 900 megapixels declared in a file of a few hundred bytes
    assert len(bomb) < 2000
    with acting(acme):
        started = time.perf_counter()
        message = refusal(lambda: accept_image_or_pdf(bomb, "bomb.png"))
        elapsed = time.perf_counter() - started
    assert message == "The image is too large: at most 50 megapixels."
    assert elapsed < 1.0


def test_a_plugin_kind_sets_its_own_pixel_and_size_limits(acme, acting):
    from flask_babel import lazy_gettext as _l

    register_kind(UploadKind("tests.avatar", frozenset({JPEG, PNG}), 1 * MB, _l("a JPG or PNG"), max_pixels=10_000))
    with acting(acme):
        assert refusal(lambda: accept_upload(samples.png(samples.photo(200, 200)), "me.png", "tests.avatar")) == (
            "The image is too large: at most 0.01 megapixels."
        )
        assert refusal(lambda: accept_upload(samples.pdf(), "me.pdf", "tests.avatar")) == (
            "The file is not a JPG or PNG: it looks like a PDF document."
        )
        assert accept_upload(samples.png(samples.photo(100, 100)), "me.png", "tests.avatar").kind == "tests.avatar"


def test_a_truncated_png_is_refused_as_damaged(acme, acting):
    whole = samples.noisy_png()
    with acting(acme):
        message = refusal(lambda: accept_image_or_pdf(whole[: len(whole) * 6 // 10], "cut.png"))
    assert message == "The image is damaged or incomplete."


def test_a_truncated_jpeg_is_refused_as_damaged(acme, acting):
    import os

    whole = samples.jpeg(Image.frombytes("RGB", (200, 200), os.urandom(200 * 200 * 3)))
    with acting(acme):
        message = refusal(lambda: accept_image_or_pdf(whole[: len(whole) // 2], "cut.jpg"))
    assert message == "The image is damaged or incomplete."


def test_images_are_decoded_in_a_child_process_under_a_time_limit(app, acme, acting, monkeypatch):
    """The web worker never decodes an upload: a child does, and is killed at its time limit."""
    monkeypatch.setitem(app.config, "FILES_IMAGE_TIMEOUT", 0.01)
    with acting(acme):
        for upload, name in ((samples.jpeg(), "photo.jpg"), (samples.heic(), "phone.heic"), (samples.png(), "a.png")):
            started = time.perf_counter()
            message = refusal(lambda upload=upload, name=name: accept_image_or_pdf(upload, name))
            assert message.startswith("The image took too long to read"), name
            assert time.perf_counter() - started < 5
    monkeypatch.setitem(app.config, "FILES_IMAGE_TIMEOUT", 20)
    with acting(acme):
        assert accept_image_or_pdf(samples.heic(), "phone.heic").content_type == "image/jpeg"


def test_a_huge_decode_is_borne_by_the_child_and_the_web_worker_stays_small(acme, acting):
    """A 6000 x 6000 photo of one colour is a few hundred KB of JPEG and over 100 MB of pixels."""
    import resource

    upload = samples.jpeg(samples.photo(6000, 6000), quality=50)
    assert len(upload) < 1 * MB
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with acting(acme):
        stored = accept_image_or_pdf(upload, "huge.jpg")
    assert (stored.width, stored.height) == (6000, 6000)
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 60_000, f"the web worker's peak memory grew by {grown_kb // 1024} MB"
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss > 100_000, "the child held the pixels"


def test_an_account_has_a_few_uploads_in_progress_at_a_time(app, acme, acting, factory, monkeypatch):
    from core.files.services import upload_slot

    user = factory.user(acme, "busy@acme.test", permissions=[])
    monkeypatch.setitem(app.config, "UPLOADS_PER_ACCOUNT", 2)
    with acting(acme), upload_slot(acme.id, user), upload_slot(acme.id, user):
        message = refusal(lambda: accept_image_or_pdf(samples.png(), "third.png", user_id=user))
        assert message == "You are already sending 2 files. Wait until they are done and try again."
        other = factory.user(acme, "calm@acme.test", permissions=[])
        assert accept_image_or_pdf(samples.png(), "theirs.png", user_id=other), "another account is not held back"
    with acting(acme):
        assert accept_image_or_pdf(samples.png(), "later.png", user_id=user), "the slots are given back"


# --- PDFs ----------------------------------------------------------------------------------


def test_a_valid_pdf_is_accepted_and_stored_as_given(acme, acting):
    upload = samples.pdf(pages=3)
    with acting(acme):
        stored = accept_image_or_pdf(upload, "Informe año 2026.pdf")
        kept = read_stored(stored)
    assert kept == upload
    assert (stored.content_type, stored.extension, stored.original_name) == (
        "application/pdf",
        "pdf",
        "Informe año 2026.pdf",
    )
    assert (stored.width, stored.height) == (None, None)


def test_a_pdf_protected_with_a_password_is_refused(acme, acting):
    with acting(acme):
        message = refusal(lambda: accept_image_or_pdf(samples.pdf(user_password="secret"), "locked.pdf"))
    assert message == "The PDF is protected with a password; upload it without protection."


def test_a_pdf_with_only_an_owner_password_opens_without_one_and_is_accepted(acme, acting):
    # Restrictions on printing or copying: every viewer opens it without asking for a password.
    upload = samples.pdf(owner_password="owner-only")
    with acting(acme):
        assert accept_image_or_pdf(upload, "bank.pdf").content_type == "application/pdf"


def test_a_truncated_pdf_is_refused_as_damaged(acme, acting):
    whole = samples.pdf(pages=2)
    with acting(acme):
        message = refusal(lambda: accept_image_or_pdf(whole[: len(whole) // 2], "cut.pdf"))
    assert message == "The PDF is damaged or incomplete."


def test_a_pdf_check_that_runs_out_of_time_is_refused_and_the_worker_killed(app, acme, acting, monkeypatch):
    monkeypatch.setitem(app.config, "FILES_PDF_CHECK_TIMEOUT", 0.01)
    with acting(acme):
        started = time.perf_counter()
        message = refusal(lambda: accept_image_or_pdf(samples.pdf(), "slow.pdf"))
    assert message.startswith("The PDF took too long to check")
    assert time.perf_counter() - started < 5


# --- sizes, CSV ----------------------------------------------------------------------------


def test_the_size_limit_is_that_of_the_kind(acme, acting):
    text = ("name;tax id\n" + "Ana;12345678Z\n" * 800_000).encode()  # about 11 MB of CSV
    assert 10 * MB < len(text) < 20 * MB
    with acting(acme):
        assert refusal(lambda: accept_upload(text, "clients.csv", "document")) == "The file is larger than 10 MB."
        stored = accept_upload(io.BytesIO(text), "clients.csv", "csv")
        assert (stored.content_type, stored.size) == ("text/csv", len(text))
        too_big = io.BytesIO(text * 2)
        assert refusal(lambda: accept_upload(too_big, "big.csv", "csv")) == "The file is larger than 20 MB."
        assert refusal(lambda: accept_upload(b"", "empty.csv", "csv")) == "The file is empty."


def test_csv_imports_accept_utf8_and_latin1_text_and_nothing_binary(acme, acting):
    with acting(acme):
        utf8 = accept_upload("nombre;ciudad\nMaría;Logroño\n".encode(), "a.csv", "csv")
        latin1 = accept_upload("nombre;ciudad\nMaría;Logroño\n".encode("latin-1"), "b.txt", "csv")
        assert (utf8.content_type, latin1.content_type, latin1.original_name) == ("text/csv", "text/csv", "b.csv")
        assert refusal(lambda: accept_upload(b"name\x00;x\n", "c.csv", "csv")).startswith("The file is not a CSV file")
        assert refusal(lambda: accept_upload(samples.png(), "c.csv", "csv")) == (
            "The file is not a CSV file: it looks like a PNG image."
        )
        assert "it looks like a web page (HTML)" in refusal(
            lambda: accept_upload(b"<html><script>x</script>", "c.csv", "csv")
        )


# --- storage -------------------------------------------------------------------------------


def test_identical_uploads_share_one_stored_object(app, acme, acting):
    from pathlib import Path

    from core.extensions import db
    from core.files.models import StoredFile

    upload = samples.jpeg()
    with acting(acme):
        first = accept_image_or_pdf(upload, "a.jpg")
        second = accept_image_or_pdf(upload, "b.jpg")
        db.session.commit()
        rows = db.session.scalars(select(StoredFile).order_by(StoredFile.id)).all()
    assert [r.original_name for r in rows] == ["a.jpg", "b.jpg"]
    assert first.key == second.key and first.id != second.id
    tenant_dir = Path(app.config["FILES_DIR"]) / str(acme.id)
    objects = [p for p in tenant_dir.rglob("*") if p.is_file()]
    assert [p.relative_to(tenant_dir).as_posix() for p in objects] == [f"{first.key[:2]}/{first.key}"]


def test_the_uploader_and_the_time_are_recorded(factory, acme, acting):
    from core.extensions import db

    user = factory.user(acme, "clerk@acme.test", permissions=[])
    with acting(acme):
        stored = accept_image_or_pdf(samples.pdf(), "x.pdf", user_id=user)
        db.session.commit()
        assert stored.created_by_id == user and stored.created_at is not None
        assert stored.kind == "document"


def test_display_names_lose_folders_and_control_characters_and_get_the_real_extension():
    from core.files.services import display_name

    assert display_name("../../etc/passwd", "pdf") == "passwd.pdf"
    assert display_name("C:\\Users\\ana\\Mi foto.HEIC", "jpg") == "Mi foto.jpg"
    assert display_name("invoice\u202egpj.exe", "pdf") == "invoicegpj.pdf"
    assert display_name("  \x00\x1f ", "png") == "file.png"
    assert display_name(None, "csv") == "file.csv"
    assert len(display_name("x" * 1000 + ".pdf", "pdf")) == 204
