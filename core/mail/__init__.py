"""Outbound e-mail through an outbox.

``services.send_email`` stores a rendered message (``OutboundMessage``) in the caller's
transaction; after the commit a ``mail``-queue job (``delivery.deliver_batch``) sends it, with
the tenant's other due messages, in batches over one connection to the tenant's SMTP server, the
platform's, or writes it as an ``.eml`` file into the outbox store (a folder or a bucket) when
there is none. Failed
attempts are retried with back-off; ``core.mail_flush`` re-enqueues what is due every minute.
``views`` holds the tenant's SMTP settings page and the operator's outbox.
"""
