"""The PEC reseller panel (seed 003, issue 12): holders, certified boxes, agents, packages, domains, assistants.

This package holds, for now, the parts that do not need core: identity validation (codice fiscale,
partita IVA, names), comuni/provincia/CAP lookups, phone rules, the rules of a box (name, availability,
types, expiry, lifecycle, reminders), the activation provider contract with its HTTP client and a
loopback test provider, and CSV import/export helpers. Models, views, jobs and hook implementations
are added on top of them once ``core.api`` exists.
"""
