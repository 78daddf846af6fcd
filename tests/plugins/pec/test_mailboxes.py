"""Box names: syntax, availability on the domain, reservation of deleted names, subentro."""

from __future__ import annotations

from datetime import date

import pytest

from plugins.pec.errors import PecError
from plugins.pec.lifecycle import BoxState
from plugins.pec.mailboxes import (
    NamePolicy,
    NameUse,
    check_holder_change,
    check_name_available,
    full_address,
    normalise_domain,
    normalise_local_part,
    split_address,
    suggest_local_part,
)

MARIO = "RSSMRA80A01H501U"
PIVA = "07973780013"
GIULIA = "BNCGLI84B69F205F"
TODAY = date(2026, 5, 1)


def error_of(call, *args, **kwargs) -> PecError:
    with pytest.raises(PecError) as caught:
        call(*args, **kwargs)
    return caught.value


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("Mario.Rossi", "mario.rossi"), (" studio-rossi_2 ", "studio-rossi_2"), ("a", "a"), ("x" * 64, "x" * 64)],
)
def test_box_names_are_stored_in_lower_case(typed, stored):
    assert normalise_local_part(typed) == stored


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("", "name.required"),
        ("mario@pec.it", "name.at"),
        ("nicolò.rossi", "name.characters"),
        ("mario rossi", "name.characters"),
        ("mario+pec", "name.characters"),
        ("x" * 65, "name.long"),
        (".mario", "name.edges"),
        ("mario-", "name.edges"),
        ("mario..rossi", "name.punctuation"),
        ("mario._rossi", "name.punctuation"),
        ("postmaster", "name.reserved"),
        ("Abuse", "name.reserved"),
    ],
)
def test_names_outside_the_rule_are_refused(typed, code):
    error = error_of(normalise_local_part, typed)
    assert (error.code, error.field) == (code, "name")


def test_a_name_with_accents_suggests_one_that_fits():
    assert "nicolo.rossi" in str(error_of(normalise_local_part, "Nicolò.Rossi"))
    assert "mario.rossi" in str(error_of(normalise_local_part, "mario rossi"))
    assert suggest_local_part("  Studio Legale D'Angelo & C. ") == "studio.legale.d.angelo.c"
    assert suggest_local_part("!!!") == ""


def test_the_gestore_s_policy_sets_lengths_and_reserved_names():
    policy = NamePolicy(min_length=3, max_length=20, reserved=frozenset({"info"}))
    assert error_of(normalise_local_part, "ab", policy).code == "name.short"
    assert error_of(normalise_local_part, "a" * 21, policy).code == "name.long"
    assert error_of(normalise_local_part, "info", policy).code == "name.reserved"
    assert normalise_local_part("postmaster", policy) == "postmaster"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("PEC.it", "pec.it"), ("@pec.studiorossi.it.", "pec.studiorossi.it"), ("pec.caffè.it", "pec.xn--caff-8oa.it")],
)
def test_domains_are_lower_case_ascii(typed, stored):
    assert normalise_domain(typed) == stored


@pytest.mark.parametrize("typed", ["", "pec", "pec..it", "-pec.it", "pec.it-", "pec.1t", "pe c.it", "a" * 64 + ".it"])
def test_what_is_not_a_domain_is_refused(typed):
    assert error_of(normalise_domain, typed).code in {"domain.required", "domain.format"}


def test_addresses_split_and_join():
    assert split_address("Mario.Rossi@PEC.it") == ("mario.rossi", "pec.it")
    assert full_address("mario.rossi", "pec.it") == "mario.rossi@pec.it"
    assert error_of(split_address, "mario.rossi").code == "address.format"
    assert error_of(split_address, "a@b@pec.it").code == "address.format"
    assert error_of(full_address, "x" * 64, ("d" * 60 + ".") * 4 + "it").code == "name.long"


# --- availability -----------------------------------------------------------------------


def test_a_name_nobody_used_is_free():
    check_name_available("mario.rossi", "pec.it", {MARIO}, [], TODAY)


@pytest.mark.parametrize("state", [BoxState.PENDING, BoxState.ACTIVE, BoxState.EXPIRED, BoxState.SUSPENDED])
def test_a_live_box_holds_its_name_on_its_domain(state):
    uses = [NameUse(state, frozenset({GIULIA}))]
    error = error_of(check_name_available, "mario.rossi", "pec.it", {MARIO}, uses, TODAY)
    assert (error.code, error.field) == ("name.taken", "name")
    assert "mario.rossi@pec.it" in str(error)


def test_the_same_holder_is_told_the_box_is_already_theirs():
    uses = [NameUse(BoxState.ACTIVE, frozenset({MARIO}))]
    assert error_of(check_name_available, "mario.rossi", "pec.it", {MARIO}, uses, TODAY).code == "name.own"


def test_a_refused_request_does_not_hold_the_name():
    uses = [NameUse(BoxState.REFUSED, frozenset({GIULIA}))]
    check_name_available("mario.rossi", "pec.it", {MARIO}, uses, TODAY)


def test_a_deleted_box_s_name_is_reserved_for_its_holder():
    uses = [NameUse(BoxState.DELETED, frozenset({MARIO, PIVA}), deleted_on=date(2020, 1, 1))]
    error = error_of(check_name_available, "mario.rossi", "pec.it", {GIULIA}, uses, TODAY)
    assert error.code == "name.reserved_for_holder"
    assert GIULIA not in str(error) and MARIO not in str(error)  # says nothing of who holds it
    # The same codice fiscale, or the same partita IVA, may take it back; case does not matter.
    check_name_available("mario.rossi", "pec.it", {MARIO.lower()}, uses, TODAY)
    check_name_available("mario.rossi", "pec.it", {"BNCGLI84B69F205F", PIVA}, uses, TODAY)


def test_a_reservation_can_end_after_the_policy_s_days():
    uses = [NameUse(BoxState.DELETED, frozenset({MARIO}), deleted_on=date(2026, 1, 1))]
    policy = NamePolicy(reservation_days=120)
    assert (
        error_of(check_name_available, "m", "pec.it", {GIULIA}, uses, date(2026, 4, 30), policy).code
        == "name.reserved_for_holder"
    )
    check_name_available("m", "pec.it", {GIULIA}, uses, date(2026, 5, 1), policy)


def test_a_live_box_counts_even_beside_deleted_ones_of_the_same_holder():
    uses = [
        NameUse(BoxState.DELETED, frozenset({MARIO}), deleted_on=date(2020, 1, 1)),
        NameUse(BoxState.ACTIVE, frozenset({GIULIA})),
    ]
    assert error_of(check_name_available, "m", "pec.it", {MARIO}, uses, TODAY).code == "name.taken"


def test_a_subentro_keeps_the_codice_fiscale_or_partita_iva():
    check_holder_change({MARIO, PIVA}, {PIVA})
    check_holder_change({MARIO}, {MARIO.lower(), None})
    error = error_of(check_holder_change, {MARIO}, {GIULIA})
    assert (error.code, error.field) == ("subentro.tax_id", "holder")
