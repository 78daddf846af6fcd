"""SOAP with attachments: the ``multipart/related`` bodies DEHú answers with.

LEMA answers carry documents as swaRef (an element ``href="cid:…"`` naming a MIME part), the
Realizadas service as MTOM/XOP (``<xop:Include href="cid:…"/>`` inside the element); small
contents may also come inline in base64. ``split`` reads any of these (the stdlib ``email``
parser does the MIME); ``related`` writes them (for the simulator).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from email import policy
from email.parser import BytesParser
from urllib.parse import unquote

from lxml import etree

from plugins.sedes.connectors.dehu.messages import XOP, child


class MimeError(ValueError):
    pass


def split(body: bytes, content_type: str) -> tuple[bytes, dict[str, bytes]]:
    """The SOAP part of an HTTP body and its attachments by Content-ID (without ``<>``)."""
    if not content_type.lower().lstrip().startswith("multipart/related"):
        return body, {}
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise MimeError("multipart/related without parts")
    start = (message.get_param("start", header="content-type") or "").strip("<> ")
    root: bytes | None = None
    attachments: dict[str, bytes] = {}
    for part in message.iter_parts():
        content_id = (part.get("Content-ID") or "").strip().strip("<>")
        payload = part.get_payload(decode=True) or b""
        is_root = content_id == start if start else root is None
        if is_root and root is None:
            root = payload
        elif content_id:
            attachments[content_id] = payload
    if root is None:
        raise MimeError("multipart/related without its root part")
    return root, attachments


def _cid(href: str | None) -> str | None:
    if not href or not href.lower().startswith("cid:"):
        return None
    return unquote(href[4:])


def content(element: etree._Element | None, attachments: dict[str, bytes]) -> bytes | None:
    """The bytes an element carries: a swaRef ``href``, an ``xop:Include``, or inline base64."""
    if element is None:
        return None
    reference = _cid(element.get("href"))
    if reference is not None:
        if reference not in attachments:
            raise MimeError(f"attachment {reference} missing")
        return attachments[reference]
    include = element.find(f".//{{{XOP}}}Include")
    if include is not None:
        reference = _cid(include.get("href"))
        if reference is None or reference not in attachments:
            raise MimeError(f"attachment {reference} missing")
        return attachments[reference]
    inner = child(element, "contenido")
    if inner is not None:
        return content(inner, attachments)
    data = "".join((element.text or "").split())
    if not data:
        return None
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error as error:
        raise MimeError("inline content is not base64") from error


def related(root: bytes, attachments: dict[str, bytes], *, mtom: bool) -> tuple[bytes, str]:
    """A ``multipart/related`` body (SwA, or MTOM/XOP when ``mtom``) and its Content-Type."""
    boundary = f"uuid:{uuid.uuid4()}"
    start = f"root.message@{uuid.uuid4().hex}"
    if mtom:
        root_type = 'application/xop+xml; charset=UTF-8; type="text/xml"'
        content_type = (
            f'multipart/related; type="application/xop+xml"; boundary="{boundary}"; '
            f'start="<{start}>"; start-info="text/xml"'
        )
    else:
        root_type = "text/xml; charset=UTF-8"
        content_type = f'multipart/related; type="text/xml"; boundary="{boundary}"; start="<{start}>"'
    parts = [(start, root_type, root)]
    parts += [(cid, "application/octet-stream", data) for cid, data in attachments.items()]
    chunks = []
    for content_id, part_type, data in parts:
        chunks.append(
            f"--{boundary}\r\nContent-Type: {part_type}\r\nContent-Transfer-Encoding: binary\r\n"
            f"Content-ID: <{content_id}>\r\n\r\n".encode()
        )
        chunks.append(data)
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), content_type
