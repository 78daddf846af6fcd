"""Catalogue upkeep: ``python -m core.i18n.catalogues fill-english <messages.po>``.

The English catalogue translates every message to itself; this fills new entries so that only
Spanish and Italian need a human after ``make translations-update``.
"""

from __future__ import annotations

import sys

from babel.messages.pofile import read_po, write_po


def fill_english(path: str) -> int:
    with open(path, "rb") as handle:
        catalogue = read_po(handle, locale="en")
    filled = 0
    for message in catalogue:
        if not message.id:
            continue
        # A fuzzy entry holds Babel's guess from a similar message: English is always the source itself.
        empty = not all(message.string) if isinstance(message.id, tuple) else not message.string
        if empty or message.fuzzy or message.string != message.id:
            message.string = message.id
            filled += 1
        message.flags.discard("fuzzy")
        message.previous_id = []
    with open(path, "wb") as handle:
        write_po(handle, catalogue, width=100)
    return filled


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "fill-english":
        sys.exit(__doc__)
    print(f"{fill_english(sys.argv[2])} English entries filled")
