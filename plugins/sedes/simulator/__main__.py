"""Run the DEHú simulator as a process (the demo's): ``python -m plugins.sedes.simulator --port 8443
--state-dir instance/dehu``. It prints its URL and CA bundle, then serves until interrupted.

The state directory keeps the CA (``ca.pem``, ``ca.key``), which the demo uses to issue its
clients' certificates, and the simulator's state (``state.json``: enrolments, notifications,
comparecencias), so a restart changes nothing. With ``--auto-enrol`` (the demo's default) any
certificate of the CA is enrolled for its own NIFs on first use; ``--demo-notifications N`` puts N
notifications at the disposal of each NIF the first time it is looked up. The same server speaks the
Seguridad Social's WSCN service at ``/INFRWSCN/WSCNService`` (state in ``wscn.json``): with
``--auto-enrol`` a certificate reads its own notifications (rol propias), of which
``--demo-notifications`` are put at disposal the first time.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from plugins.sedes.simulator import DehuSimulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plugins.sedes.simulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--state-dir", required=True, help="where the CA and the state are kept")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds every answer waits")
    parser.add_argument("--page-size", type=int, default=50, help="envios per Localiza answer")
    parser.add_argument("--no-auto-enrol", dest="auto_enrol", action="store_false")
    parser.add_argument("--demo-notifications", type=int, default=0)
    args = parser.parse_args(argv)

    simulator = DehuSimulator(
        state_dir=args.state_dir,
        host=args.host,
        port=args.port,
        latency=args.latency,
        page_size=args.page_size,
        auto_enrol=args.auto_enrol,
        demo_notifications=args.demo_notifications,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with simulator:
        print(f"DEHú simulator listening on {simulator.url} (CA bundle {simulator.ca_bundle})", flush=True)
        print(f"Seguridad Social (WSCN) on {simulator.wscn_url}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
