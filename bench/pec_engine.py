"""Benchmark of the pec plugin's engine: what the address form and the CSV import will cost.

Prints, one line per figure:
- building the comuni index (once per process);
- search-as-you-type over every prefix of 200 comuni names: median and 99th percentile per
  search, beside a bare linear scan of the same data with the same folding, as a ratio;
- parsing a 10,000-row holders CSV and a 10,000-row boxes CSV (every field validated).

    .venv/bin/python bench/pec_engine.py
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def timed(call, *args):
    started = time.perf_counter()
    result = call(*args)
    return result, time.perf_counter() - started


def main() -> None:
    from plugins.pec import comuni as comuni_module
    from plugins.pec.comuni import ComuniIndex, _load_records, fold
    from plugins.pec.imports import parse_boxes, parse_holders

    records, load = timed(_load_records)
    index, build = timed(ComuniIndex, records)
    comuni_module._index = index
    print(
        f"comuni: {len(index)} loaded from the bundled CSVs in {load * 1000:.0f} ms, indexed in {build * 1000:.0f} ms"
    )

    random.seed(3)
    names = [c.name for c in random.sample(records, 200)]
    queries = [name[:n] for name in names for n in range(1, len(name) + 1)]
    ours = []
    for query in queries:
        _, elapsed = timed(index.search, query)
        ours.append(elapsed)
    folded = [(fold(c.name), c) for c in records]

    def scan(query: str):
        key = fold(query)
        return sorted((f, c.sigla) for f, c in folded if f.startswith(key) or (" " + key) in f)[:10]

    bare = []
    for query in queries[:: max(1, len(queries) // 500)]:
        _, elapsed = timed(scan, query)
        bare.append(elapsed)
    p50, p99 = statistics.median(ours), statistics.quantiles(ours, n=100)[98]
    print(
        f"search as you type: {len(queries)} searches, median {p50 * 1e6:.0f} us, p99 {p99 * 1e6:.0f} us;"
        f" bare linear scan median {statistics.median(bare) * 1e6:.0f} us"
        f" (ratio {statistics.median(bare) / p50:.0f}x faster)"
    )

    holder = (
        "PF;RSSMRA80A01H501U;;Mario;Rossi;;mario.rossi@example.it;Via del Corso 12;00186;Roma;RM;"
        "06 4688 2031;347 218 9054;\n"
    )
    header = "Tipo;Codice Fiscale;Partita IVA;Nome;Cognome;Ragione Sociale;E-mail;Indirizzo;CAP;Comune;Provincia;"
    data = (header + "Telefono;Cellulare;Fax\n" + holder * 10_000).encode()
    report, elapsed = timed(parse_holders, data)
    print(f"holders CSV: {report.counts['rows']} rows in {elapsed:.2f} s ({elapsed / 10_000 * 1e6:.0f} us a row)")
    data = (
        "Casella PEC;CF;Tipo casella;Durata;Rinnovo\n"
        + "".join(f"box{i}@pec.example.it;RSSMRA80A01H501U;pro;2;tacito\n" for i in range(10_000))
    ).encode()
    report, elapsed = timed(parse_boxes, data)
    print(f"boxes CSV: {report.counts['rows']} rows in {elapsed:.2f} s ({elapsed / 10_000 * 1e6:.0f} us a row)")


if __name__ == "__main__":
    main()
