"""Parsing raw messages: what a request needs from the corpus, charsets, HTML, attachments, automation
rules, delivery reports, and quarantine for what cannot be read — never an exception."""

from __future__ import annotations

import datetime as dt
import random
from email.message import EmailMessage

import pytest

from plugins.inboxes.connectors import FetchedMessage
from plugins.inboxes.mail.automation import Kind
from plugins.inboxes.mail.bounces import Action
from plugins.inboxes.mail.charsets import decode_text
from plugins.inboxes.mail.parsing import (
    Address,
    Limits,
    ParsedMessage,
    Quarantined,
    decode_header_value,
    parse_fetched,
    parse_message,
)
from plugins.inboxes.mail.sanitize import html_to_text, rewrite_cid_images, sanitize_html
from plugins.inboxes.mail.threads import SubjectTag, message_key
from tests.plugins.inboxes.conftest import corpus, corpus_names

OURS = {"own_domains": ("ventanilla.example",), "loop_token": "ventanilla-inboxes"}


def parse(name: str, **options) -> ParsedMessage:
    result = parse_message(corpus(name), **{**OURS, **options})
    assert isinstance(result, ParsedMessage), getattr(result, "detail", result)
    return result


# --- what a request needs -------------------------------------------------------------------------


def test_a_plain_message_gives_subject_people_date_and_body():
    message = parse("plain_utf8.eml")
    assert message.subject == "No puedo acceder al portal de señales"
    assert message.from_address == Address("Lucía Pérez", "Lucia.Perez@example.com")
    assert str(message.from_address) == "Lucía Pérez <Lucia.Perez@example.com>"
    assert message.to == [Address("Soporte", "soporte@asesoria.example")]
    assert message.cc == [Address("Gómez, Ana", "ana@example.com"), Address("", "bob@example.net")]
    assert message.date == dt.datetime(2024, 12, 3, 9, 15, tzinfo=dt.UTC)
    assert message.message_id == "CAF1234.5678@mail.example.com" and not message.synthetic_id
    assert message.text.endswith("¿Pueden revisarlo? Gracias, Lucía")
    assert message.html is None and message.attachments == [] and not message.automation.is_automatic
    assert message.automation.may_auto_respond and message.reply_address == message.from_address


def test_the_key_is_the_same_whether_fetched_or_parsed():
    for name in corpus_names():
        raw = corpus(name)
        result = parse_message(raw)
        assert result.key == message_key(raw) == FetchedMessage(raw=raw, size=len(raw), folder="INBOX").key


def test_a_message_without_message_id_gets_a_stable_synthetic_one():
    raw = corpus("no_message_id.eml")
    first, second = parse_message(raw), parse_message(raw.replace(b"\n", b"\r\n"))
    assert first.synthetic_id and first.message_id.endswith("@synthetic.invalid")
    assert first.message_id == second.message_id == first.key
    other = parse_message(raw.replace(b"identificador", b"identificador nuevo"))
    assert other.message_id != first.message_id


def test_threading_keys_and_subject_tag_of_a_reply():
    message = parse("reply_with_tag.eml", tag_prefix="REQ")
    assert message.tags == [SubjectTag("REQ", 123)]
    assert message.in_reply_to == ["vt.123.9.aaaaaa.bbbbbbbbbbbbbbbb@ventanilla.example"]
    assert message.references == [
        "CAF1234.5678@mail.example.com",
        "vt.123.9.aaaaaa.bbbbbbbbbbbbbbbb@ventanilla.example",
    ]
    assert message.thread_ids == [
        "vt.123.9.aaaaaa.bbbbbbbbbbbbbbbb@ventanilla.example",
        "CAF1234.5678@mail.example.com",
    ]
    assert message.text.startswith("Ya funciona, gracias.")


# --- charsets -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "subject", "text", "note"),
    [
        ("latin1.eml", "Factura de señor Muñoz", "Buenos días, adjunto la información del año pasado.", None),
        (
            "windows1252.eml",
            "Preventivo € 1.200 “urgente”",
            "Il preventivo è di € 1.200 \u2013 “urgente”, grazie.",
            None,
        ),
        (
            "wrong_charset_utf8_as_latin1.eml",
            "Declared latin-1, really UTF-8",
            "La reunión es mañana a las 10.",
            "declared iso-8859-1, decoded as utf-8",
        ),
        (
            "wrong_charset_latin1_as_utf8.eml",
            "Declared UTF-8, really latin-1",
            "La reunión es mañana a las 10.",
            "declared utf-8, decoded as cp1252",
        ),
        (
            "unknown_charset.eml",
            "Información pendiente",
            "Envío la información pendiente.",
            "declared x-unknown, decoded as cp1252",
        ),
    ],
)
def test_charsets_decode_with_fallbacks(name, subject, text, note):
    message = parse(name)
    assert message.subject == subject
    assert message.text.strip() == text
    assert message.notes == ([note] if note else [])


def test_raw_eight_bit_and_unknown_charset_names_stay_readable():
    assert parse("latin1.eml").from_address.name == "José Martínez"
    assert parse("unknown_charset.eml").from_address.name == "José"


def test_encoded_words_split_inside_a_character_are_joined():
    message = parse("encoded_words_split.eml")
    assert message.subject == "Información urgente — año"
    assert message.from_address.name == "Núria Puig"
    assert [a.filename for a in message.attachments] == ["Declaración trimestral.pdf"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=?utf-8?q?caf=C3=A9?= =?utf-8?q?_con_leche?=", "café con leche"),
        ("=?iso-8859-1?b?QWz+?=", "Alþ"),
        ("plain and =?utf-8?q?m=C3=A1s?= text", "plain and más text"),
        ("=?utf-8?q?broken=ZZ?=", "broken=ZZ"),
        ("=?utf-8?b?not base64 !!?=", "=?utf-8?b?not base64 !!?="),
        ("line one\r\n line two", "line one line two"),
        ("bell\x07 and null\x00", "bell and null"),
    ],
)
def test_header_values_decode_without_surprises(value, expected):
    assert decode_header_value(value) == expected


@pytest.mark.parametrize(
    ("data", "declared", "text", "charset", "guessed"),
    [
        ("año".encode(), "utf-8", "año", "utf-8", False),
        ("año".encode("latin-1"), "ISO-8859-1", "año", "iso8859-1", False),
        ("año".encode(), "us-ascii", "año", "utf-8", True),
        ("€".encode("cp1252"), "us-ascii", "€", "cp1252", True),
        ("€".encode("cp1252"), "text/html", "€", "cp1252", True),
        (b"plain", None, "plain", "utf-8", False),
        (b"\x81\x8d", "utf-8", "\x81\x8d", "latin-1", True),
        ("中文".encode("gbk"), "gb2312", "中文", "gb18030", False),
    ],
)
def test_decode_text_never_fails(data, declared, text, charset, guessed):
    decoded = decode_text(data, declared)
    assert (decoded.text, decoded.charset, decoded.guessed) == (text, charset, guessed)


# --- HTML -----------------------------------------------------------------------------------------


def test_html_is_sanitised_and_a_text_body_made_from_it():
    message = parse("html_only_scripts.eml")
    html = message.html
    for dangerous in ("<script", "alert", "onload", "onerror", "javascript:", "<iframe", "<form", "<input", "<style"):
        assert dangerous not in html, dangerous
    assert "track.example" not in html  # remote images and url() styles call home: dropped
    assert 'style="color:red"' in html and "position" not in html
    assert '<a href="https://shop.example/oferta" rel="noopener noreferrer nofollow">' in html
    assert message.text == (
        "Hola cliente,\n\nVisite esto o nuestra oferta <https://shop.example/oferta>.\n\n- Uno\n\n- Dos"
    )


def test_remote_images_can_be_allowed_explicitly():
    html = parse("html_only_scripts.eml", allow_remote_images=True).html
    assert 'src="https://track.example/pixel.gif"' in html
    assert "url(" not in html


def test_inline_images_are_found_by_content_id_and_can_point_at_our_urls():
    message = parse("related_inline_and_pdf.eml")
    assert message.text == "Adjunto el presupuesto. [logo]"
    assert '<img src="cid:logo@example.com" alt="logo">' in message.html
    (logo,) = message.inline
    assert (logo.content_type, logo.content_id, logo.inline) == ("image/png", "logo@example.com", True)
    assert message.inline_image("<logo@example.com>") is logo
    shown = rewrite_cid_images(message.html, lambda cid: f"/demo/requests/files/{cid}?a=1&b=2")
    assert '<img src="/demo/requests/files/logo@example.com?a=1&amp;b=2" alt="logo">' in shown
    assert 'src=""' in rewrite_cid_images(message.html, lambda cid: None)
    # An image with a Content-ID that the HTML does not show is an ordinary attachment.
    assert [(a.filename, a.content_type, a.inline) for a in message.attachments] == [
        ("presupuesto año 2025.pdf", "application/pdf", False),
        ("attachment-3.png", "image/png", False),
    ]
    assert message.attachments[0].data.startswith(b"%PDF-1.4")


def test_html_to_text_keeps_paragraphs_lists_and_links():
    text = html_to_text(
        "<div>Hola<br>Mundo</div><p>Vea <a href='https://x.example/a'>la web</a></p>"
        "<table><tr><td>A</td><td>B</td></tr></table><pre>  keep   spaces</pre><style>p{}</style>"
    )
    assert text == "Hola\nMundo\n\nVea la web <https://x.example/a>\n\nA\tB\n\n  keep   spaces"


def test_sanitize_keeps_mail_layout_and_drops_what_loads_or_runs():
    html = sanitize_html(
        '<table width="600" style="border-collapse:collapse;background:url(https://t.example/x)">'
        '<tr><td bgcolor="#eee" style="padding:4px;color:#333">x</td></tr></table>'
        '<a href="cid:part1">cid link</a><img src="data:image/png;base64,AAAA"><svg><script>1</script></svg>'
    )
    assert '<table width="600" style="border-collapse:collapse">' in html
    assert '<td bgcolor="#eee" style="padding:4px;color:#333">' in html
    assert "cid:part1" not in html and "data:" not in html and "<svg" not in html


# --- attachments and limits ------------------------------------------------------------------------


def test_attachments_come_with_name_type_size_and_bytes():
    message = parse("large_attachment.eml")
    scan, note = message.attachments
    assert (scan.filename, scan.content_type, scan.size) == ("scan.bin", "application/octet-stream", 65536)
    assert (note.filename, note.content_type, note.data) == ("nota.txt", "text/plain", b"Una nota adjunta.")
    assert len(scan.sha256) == 64 and message.text == "Documento adjunto."


def test_attachment_limits_skip_what_is_too_big_or_too_many():
    too_big = parse("large_attachment.eml", limits=Limits(max_attachment_bytes=32 * 1024))
    assert [a.filename for a in too_big.attachments] == ["nota.txt"]
    (skipped,) = too_big.skipped
    assert (skipped.filename, skipped.size, skipped.reason) == ("scan.bin", 65536, "too_large")
    assert "larger than the limit" in str(skipped.message)

    too_many = parse("large_attachment.eml", limits=Limits(max_attachments=1))
    assert [(s.filename, s.reason) for s in too_many.skipped] == [("nota.txt", "too_many")]
    total = parse("large_attachment.eml", limits=Limits(max_total_attachment_bytes=65536 + 5))
    assert [(s.filename, s.reason) for s in total.skipped] == [("nota.txt", "total_too_large")]


def test_a_forwarded_message_is_an_attachment_not_part_of_the_body():
    message = parse("forwarded_message.eml")
    assert message.subject == "Fwd: Reclamación" and message.text == "Os reenvío la reclamación del cliente."
    (forwarded,) = message.attachments
    assert forwarded.filename == "message-1.eml" and forwarded.content_type == "message/rfc822"
    assert b"Texto de la reclamaci" in forwarded.data


def test_attachment_names_cannot_climb_out_of_a_folder():
    message = EmailMessage()
    message["From"] = "a@example.com"
    message["Subject"] = "names"
    message.set_content("see attached")
    message.add_attachment(b"x", maintype="application", subtype="octet-stream", filename="../../etc/passwd")
    message.add_attachment(b"y", maintype="application", subtype="pdf", filename="C:\\Users\\x\\fa<c>t.pdf")
    message.add_attachment(b"z", maintype="application", subtype="pdf", filename="...")
    parsed = parse_message(message.as_bytes())
    assert [a.filename for a in parsed.attachments] == ["passwd", "fa_c_t.pdf", "attachment-3.pdf"]


# --- automation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "reason"),
    [
        ("autoreply_vacation.eml", Kind.AUTO_REPLY, "Auto-Submitted: auto-replied"),
        ("autoreply_x_autorespond.eml", Kind.AUTO_REPLY, "X-Autorespond present"),
        ("bulk_newsletter.eml", Kind.BULK, "Precedence: bulk"),
        ("loop_x_loop.eml", Kind.LOOP, "X-Loop is ours"),
        ("dsn_failed.eml", Kind.BOUNCE, "delivery status report"),
        ("bounce_nonstandard.eml", Kind.BOUNCE, "from postmaster"),
        ("read_receipt.eml", Kind.READ_RECEIPT, "disposition notification"),
    ],
)
def test_mail_no_person_wrote_is_recognised_and_gets_no_automatic_answer(name, kind, reason):
    automation = parse(name).automation
    assert automation.kind == kind and reason in automation.reasons
    assert automation.is_automatic and not automation.may_auto_respond


def test_our_own_message_coming_back_is_a_loop_even_without_x_loop():
    raw = corpus("loop_x_loop.eml").replace(b"X-Loop: ventanilla-inboxes\n", b"")
    automation = parse_message(raw, own_domains=("ventanilla.example",)).automation
    assert automation.kind == Kind.LOOP and automation.reasons == ("Message-ID on our own domain",)


@pytest.mark.parametrize(
    ("headers", "kind"),
    [
        ("Auto-Submitted: no", None),
        ("Auto-Submitted: auto-generated; owner-email=x@y", Kind.AUTO_GENERATED),
        ("Precedence: junk", Kind.BULK),
        ("Precedence: auto_reply", Kind.AUTO_REPLY),
        ("X-Precedence: list", Kind.BULK),
        ("X-Autoreply: yes", Kind.AUTO_REPLY),
        ("X-Loop: someone-else", Kind.AUTO_GENERATED),
        ("Return-Path: <>", Kind.AUTO_GENERATED),
        ("List-Unsubscribe: <https://x.example/u>", Kind.BULK),
        ("X-MS-Exchange-Inbox-Rules-Loop: a@b.example", Kind.AUTO_REPLY),
    ],
)
def test_each_automation_header_is_recognised(headers, kind):
    raw = f"From: a@example.com\nSubject: hi\n{headers}\n\nbody\n".encode()
    assert parse_message(raw).automation.kind == kind


@pytest.mark.parametrize(
    "subject", ["Respuesta automática: hola", "Out of Office: hi", "Risposta automatica: ciao", "Automatic reply: x"]
)
def test_vacation_replies_without_headers_are_told_by_their_subject(subject):
    raw = f"From: a@example.com\nSubject: {subject}\n\nbody\n".encode()
    assert parse_message(raw).automation.kind == Kind.AUTO_REPLY


def test_senders_who_ask_for_no_auto_response_get_none():
    suppressed = parse_message(b"From: a@example.com\nSubject: hi\nX-Auto-Response-Suppress: OOF, AutoReply\n\nx\n")
    assert not suppressed.automation.is_automatic and not suppressed.automation.may_auto_respond
    no_reply = parse_message(b"From: no-reply@shop.example\nSubject: your order\n\nx\n")
    assert not no_reply.automation.may_auto_respond


# --- delivery reports ---------------------------------------------------------------------------------


def test_a_delivery_report_names_the_failed_message_recipient_and_status():
    bounce = parse("dsn_failed.eml").bounce
    assert bounce.standard and bounce.failed and bounce.status == "5.1.1"
    assert bounce.original_message_id == "vt.42.3.0a0b0c.1122334455667788@ventanilla.example"
    assert bounce.reporting_mta == "mx.asesoria.example"
    (recipient,) = bounce.recipients
    assert (recipient.recipient, recipient.action, recipient.permanent) == ("nobody@example.org", Action.FAILED, True)
    assert "User unknown" in recipient.diagnostic
    assert parse("dsn_failed.eml").attachments == []  # the report's parts are data, not files


def test_a_delay_report_is_not_a_failure():
    bounce = parse("dsn_delayed.eml").bounce
    assert bounce.original_message_id == "outbound-99@ventanilla.example"
    assert not bounce.failed and bounce.recipients[0].action == Action.DELAYED and bounce.status == "4.4.7"


def test_an_old_style_bounce_is_read_from_its_quoted_headers():
    bounce = parse("bounce_nonstandard.eml").bounce
    assert not bounce.standard and bounce.failed
    assert bounce.original_message_id == "outbound-100@ventanilla.example" and bounce.status == "5.1.1"


# --- quarantine -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("malformed_no_boundary.eml", "no_boundary"),
        ("malformed_boundary_missing.eml", "boundary_not_found"),
        ("malformed_no_headers.eml", "no_headers"),
    ],
)
def test_malformed_mime_is_quarantined_with_its_reason(name, reason):
    raw = corpus(name)
    result = parse_message(raw)
    assert isinstance(result, Quarantined)
    assert result.reason == reason and result.raw == raw and result.key == message_key(raw)
    assert str(result.message)


def test_a_quarantined_message_keeps_what_its_headers_say():
    result = parse_message(corpus("malformed_no_boundary.eml"))
    assert result.subject == "Multipart without boundary"
    assert result.from_address == Address("", "broken@example.com")
    assert result.message_id == "broken-1@example.com"


def _nested(depth: int) -> bytes:
    inner = b"Content-Type: text/plain\n\nbottom\n"
    for level in range(depth):
        inner = (
            f"Content-Type: multipart/mixed; boundary=b{level}\n\n--b{level}\n".encode()
            + inner
            + f"--b{level}--\n".encode()
        )
    return b"From: bomb@example.com\nSubject: bomb\nMIME-Version: 1.0\n" + inner


def test_mime_bombs_are_quarantined():
    assert isinstance(parse_message(_nested(5)), ParsedMessage)
    deep = parse_message(_nested(30))
    assert isinstance(deep, Quarantined) and deep.reason == "too_complex"
    parts = "".join(f"--x\nContent-Type: text/plain\n\n{n}\n" for n in range(600))
    wide = f"From: a@example.com\nSubject: wide\nContent-Type: multipart/mixed; boundary=x\n\n{parts}--x--\n"
    result = parse_message(wide.encode())
    assert isinstance(result, Quarantined) and result.reason == "too_complex"


def test_a_message_too_large_to_fetch_is_quarantined_with_its_headers():
    raw = corpus("plain_utf8.eml")
    headers = raw[: raw.index(b"\n\n") + 2]
    fetched = FetchedMessage(raw=headers, size=50_000_000, folder="INBOX", too_large=True)
    result = parse_fetched(fetched)
    assert isinstance(result, Quarantined) and result.reason == "too_large"
    assert result.subject == "No puedo acceder al portal de señales"
    assert result.message_id == "CAF1234.5678@mail.example.com" == result.key


def test_parsing_never_raises_on_garbage_or_truncated_mail():
    rng = random.Random(20241204)
    samples = [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 400))) for _ in range(150)]
    for name in corpus_names():
        raw = corpus(name)
        samples += [raw[: rng.randint(0, len(raw))] for _ in range(8)]
        flipped = bytearray(raw)
        for _ in range(20):
            flipped[rng.randrange(len(flipped))] = rng.getrandbits(8)
        samples.append(bytes(flipped))
    for sample in samples:
        result = parse_message(sample)
        assert isinstance(result, ParsedMessage | Quarantined)
        assert result.key
