"""Our own messages: Message-IDs on our domain that thread back (and cannot be forged), the subject tag,
In-Reply-To/References, and Auto-Submitted — checked by reading them back with our own parser."""

from __future__ import annotations

import datetime as dt

import pytest

from plugins.inboxes.mail.automation import Kind
from plugins.inboxes.mail.outbound import (
    Automatic,
    OutboundAttachment,
    OutboundDraft,
    ThreadContext,
    build_message,
    extra_headers,
)
from plugins.inboxes.mail.parsing import ParsedMessage, parse_message
from plugins.inboxes.mail.threads import (
    SubjectTag,
    base_subject,
    find_tags,
    format_tag,
    is_own_domain,
    message_ids,
    normalise_message_id,
    own_message_id,
    parse_own_message_id,
    reference_chain,
    reply_references,
    tag_subject,
)
from tests.plugins.inboxes.conftest import corpus

KEY = b"installation secret"
DOMAIN = "ventanilla.example"


def read_back(draft: OutboundDraft) -> ParsedMessage:
    parsed = parse_message(build_message(draft).as_bytes(), own_domains=(DOMAIN,), loop_token="ventanilla-inboxes")
    assert isinstance(parsed, ParsedMessage)
    return parsed


def test_an_acknowledgement_threads_back_and_no_robot_answers_it():
    customer = parse_message(corpus("plain_utf8.eml"))
    draft = OutboundDraft(
        from_address="Soporte Asesoría <soporte@asesoria.example>",
        to=[customer.reply_address.header],
        subject=f"Re: {customer.subject}",
        text="Hemos recibido su solicitud.",
        html="<p>Hemos recibido su solicitud.</p>",
        domain=DOMAIN,
        request_id=123,
        entry_id=4,
        signing_key=KEY,
        tag_prefix="REQ",
        request_number=123,
        replying_to=ThreadContext(customer.message_id, tuple(customer.references)),
        automatic=Automatic.AUTO_REPLIED,
        loop_token="ventanilla-inboxes",
        language="es",
        attachments=[OutboundAttachment("condiciones.pdf", b"%PDF-1.4 x")],
        date=dt.datetime(2024, 12, 3, 10, 0, tzinfo=dt.UTC),
    )
    ours = read_back(draft)

    assert ours.subject == "[#REQ-123] Re: No puedo acceder al portal de señales"
    assert ours.tags == [SubjectTag("REQ", 123)]
    assert ours.in_reply_to == ["CAF1234.5678@mail.example.com"]
    assert ours.references == ["CAF1234.5678@mail.example.com"]
    assert ours.to[0].email == "Lucia.Perez@example.com" and ours.to[0].name == "Lucía Pérez"
    assert parse_own_message_id(ours.message_id, KEY, [DOMAIN]).request_id == 123
    assert ours.message_id.endswith("@ventanilla.example")
    assert ours.automation.kind == Kind.LOOP  # our own message, should it ever come back
    assert [a.filename for a in ours.attachments] == ["condiciones.pdf"]
    assert ours.text.strip() == "Hemos recibido su solicitud." and "<p>" in ours.html

    mime = build_message(draft)
    assert mime["Auto-Submitted"] == "auto-replied" and mime["X-Auto-Response-Suppress"] == "All"
    assert mime["Content-Language"] == "es"

    # The customer's answer to it finds its request through our id.
    answer = (
        f"From: lucia@example.com\nSubject: Re: {ours.subject}\nMessage-ID: <answer@example.com>\n"
        f"In-Reply-To: <{ours.message_id}>\n"
        f"References: <CAF1234.5678@mail.example.com> <{ours.message_id}>\n\nGracias\n"
    ).encode()
    parsed = parse_message(answer, tag_prefix="REQ")
    own = [parse_own_message_id(i, KEY, [DOMAIN]) for i in parsed.thread_ids]
    assert own[0].request_id == 123 and own[0].entry_id == 4 and own[1] is None
    assert parsed.tags == [SubjectTag("REQ", 123)] and parsed.automation.may_auto_respond


def test_a_message_a_person_writes_carries_no_automation_headers():
    draft = OutboundDraft(from_address="gestor@asesoria.example", to=["cliente@example.com"], subject="Hola", text="x")
    mime = build_message(draft)
    assert mime["Auto-Submitted"] is None and mime["X-Loop"] is None and mime["In-Reply-To"] is None
    assert mime["Message-ID"].endswith("@ventanilla.localhost>")
    assert not read_back(draft).automation.is_automatic
    assert extra_headers(draft) == []


def test_a_workflow_notice_is_auto_generated_with_a_given_message_id():
    draft = OutboundDraft(
        from_address="avisos@asesoria.example",
        to=["cliente@example.com"],
        cc=["copia@example.com"],
        reply_to="soporte@asesoria.example",
        subject="  Su   solicitud  ",
        text="Cambió de estado.",
        message_id="<outbox-77@ventanilla.example>",
        automatic=Automatic.AUTO_GENERATED,
    )
    parsed = read_back(draft)
    assert parsed.message_id == "outbox-77@ventanilla.example" and parsed.subject == "Su solicitud"
    assert parsed.automation.kind == Kind.LOOP  # on our domain
    mime = build_message(draft)
    assert mime["Auto-Submitted"] == "auto-generated" and mime["Reply-To"] == "soporte@asesoria.example"
    assert parsed.cc[0].email == "copia@example.com"


def test_a_message_without_recipients_is_refused():
    with pytest.raises(ValueError):
        build_message(OutboundDraft(from_address="a@b.example", to=[], subject="x", text="y"))


def test_long_threads_keep_the_first_and_the_nearest_references():
    chain = reply_references("m30@x.example", [f"m{n}@x.example" for n in range(30)])
    assert len(chain) == 20 and chain[0] == "m0@x.example" and chain[-1] == "m30@x.example"
    assert chain[-2] == "m29@x.example"


# --- threading keys ---------------------------------------------------------------------------------


def test_own_message_ids_are_signed_and_cannot_be_forged():
    mid = own_message_id(DOMAIN, KEY, 42, 7)
    assert parse_own_message_id(f"<{mid}>", KEY, [DOMAIN]).request_id == 42
    assert parse_own_message_id(mid, KEY).entry_id == 7
    assert own_message_id(DOMAIN, KEY, 42, 7) != mid  # every id is unique
    forged = mid.replace("vt.42.", "vt.43.")
    assert parse_own_message_id(forged, KEY, [DOMAIN]) is None
    assert parse_own_message_id(mid, b"another installation", [DOMAIN]) is None
    assert parse_own_message_id(mid, KEY, ["other.example"]) is None
    assert parse_own_message_id("CAF1234@mail.example.com", KEY) is None
    no_entry = own_message_id(DOMAIN, KEY, 5)
    assert parse_own_message_id(no_entry, KEY).entry_id is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<Abc.123@Mail.Example.COM>", "Abc.123@mail.example.com"),
        ("  <a@b>  (comment)", "a@b"),
        ("a@b.example", "a@b.example"),
        ("<no-at-sign>", None),
        ("", None),
        (None, None),
    ],
)
def test_message_ids_are_normalised(value, expected):
    assert normalise_message_id(value) == expected


def test_reference_headers_are_split_and_ordered_nearest_first():
    refs = message_ids("<a@x>\r\n <b@x> <a@x>\t<c@x>")
    assert refs == ["a@x", "b@x", "c@x"]
    assert reference_chain(["c@x"], refs) == ["c@x", "b@x", "a@x"]
    assert message_ids("broken a@x, b@x") == ["a@x", "b@x"]  # without brackets, as some mailers write them


def test_subject_tags_and_base_subjects():
    assert format_tag("req", 5) == "[#REQ-5]"
    assert find_tags("Re: [#REQ-12] y [#INC-3] [#REQ-12]") == [SubjectTag("REQ", 12), SubjectTag("INC", 3)]
    assert find_tags("Re: [#REQ-12] y [#INC-3]", prefix="inc") == [SubjectTag("INC", 3)]
    assert find_tags("[REQ-12] #12 [#12]") == []
    assert tag_subject("[#REQ-5] Hola", "REQ", 5) == "[#REQ-5] Hola"
    assert tag_subject("Hola", "REQ", 5) == "[#REQ-5] Hola"
    assert base_subject("RE: Fwd: RV: [#REQ-5] R: I: Hola  mundo") == "hola mundo"
    assert base_subject("AW: WG: SV: Rif: Re[2]: Oferta") == "oferta"
    assert base_subject("Reunión") == "reunión"


def test_own_domains_match_subdomains_only_at_a_dot():
    assert is_own_domain("<x@ventanilla.example>", ["ventanilla.example"])
    assert is_own_domain("<x@mail.ventanilla.example>", ["ventanilla.example"])
    assert not is_own_domain("<x@notventanilla.example>", ["ventanilla.example"])
    assert not is_own_domain(None, ["ventanilla.example"])
