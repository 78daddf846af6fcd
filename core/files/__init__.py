"""Files: uploads checked by content, stored content-addressed per tenant, served by checked views.

- ``models``: ``StoredFile``, one row per accepted upload (tenant-scoped).
- ``store``: the ``FileStore`` and ``NamedStore`` (the outbox) interfaces, their local-folder backends,
  ``get_store()`` / ``get_named_store()``; ``s3``: their S3-compatible backends (``FILES_STORE=s3``).
- ``kinds``: upload kinds (allowed types, size and pixel limits); plugins register their own.
- ``sniff``: the type of some bytes, decided from their content, never from a name.
- ``services``: ``accept_upload`` / ``accept_image_or_pdf``, ``thumbnail``, ``delete_stored_file``.
- ``downloads``: ``send_stored_file`` for views that already checked tenant and permission.
"""
