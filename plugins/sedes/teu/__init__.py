"""The Tablón Edictal Único of the BOE: the day's edicts searched for the clients' document numbers.

- ``documents``: Spanish document numbers as an edict's text shows them, normalised;
- ``boe``: the day's index and the announcements' PDFs from the BOE (a configurable base URL);
- ``board``: the daily job (``sedes.teu_board``) and what a match becomes (a notification of kind TEU).
"""
