"""E-mail mailboxes per contract: inbound mail becomes requests, outbound mail leaves by contract and flow.

This package holds, for now, the parts that need nothing from core:

- ``connectors``: talking to mail servers — IMAP and POP3 fetchers (UID/UIDL-incremental, post-fetch
  actions only after the caller committed), TLS policy, errors classified in words, provider presets,
  and a throwaway Dovecot for tests and the demo.
- ``mail``: reading and writing messages — parsing a raw message into what a request needs
  (bodies, attachments, threading keys, charsets with fallbacks, quarantine of what cannot be read),
  recognising auto-replies, bulk mail, loops and delivery reports, sanitising HTML, and building
  our own automatic messages.

Models, views, jobs and hook implementations come with the plugin API (``core.api``).
"""
