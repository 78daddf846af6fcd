"""Reading a day of the Tablón Edictal Único from the BOE: the day's index and each announcement's PDF.

The index of a day is ``{base}/boe_n/dias/YYYY/MM/DD/index.php?l=N``: the announcements grouped
under headings (section, department, the issuing body), each an ``<li class="notif">`` with its
title and a link to its PDF whose name holds its identifier ``BOE-N-YYYY-NNNNNN``. A day without
a supplement (a Sunday) answers 404: no announcements.

The base URL is the operator's (the ``teu`` entry of the sede catalogue): https, a public host
unless the operator allows private ones (``core.api.checked_address``), and the catalogue's extra
CAs trusted beside the system's. The text of a PDF comes from pypdf.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import logging
import re
import ssl
from dataclasses import dataclass
from datetime import date
from urllib.parse import urljoin, urlsplit

from lxml import html
from pypdf import PdfReader
from pypdf.errors import PdfReadError

from core.api import DomainError, pinned_http_connection

log = logging.getLogger(__name__)

IDENTIFIER = re.compile(r"BOE-N-\d{4}-\d{1,8}")
MAX_INDEX = 20 * 1024 * 1024
MAX_PDF = 50 * 1024 * 1024
HEADINGS = {"h2": 0, "h3": 1, "h4": 2, "h5": 3, "h6": 4}


class BoardUnavailable(Exception):
    """The BOE could not be read (refused address, TLS, timeout, an answer other than 200 or 404)."""


@dataclass(frozen=True)
class Announcement:
    identifier: str  # BOE-N-YYYY-NNNNNN
    day: date
    title: str
    issuer: str  # the body that publishes it (the last heading above it)
    department: str  # the heading above the issuer's, when there is one
    pdf_url: str


def index_url(base_url: str, day: date) -> str:
    return f"{base_url.rstrip('/')}/boe_n/dias/{day:%Y/%m/%d}/index.php?l=N"


class Reader:
    """GET requests to one BOE host over one kept-alive TLS connection (checked address, pinned)."""

    def __init__(self, base_url: str, *, ca_bundle: str | None = None, timeout: float = 30.0):
        parts = urlsplit(base_url)
        if parts.scheme != "https" or not parts.hostname:
            raise BoardUnavailable(f"not an https URL: {base_url}")
        self.base_url = base_url
        self.host = parts.hostname
        self.port = parts.port or 443
        self.context = ssl.create_default_context(cafile=ca_bundle)
        if ca_bundle:
            self.context.load_default_certs()
        self.timeout = timeout
        self._connection: http.client.HTTPSConnection | None = None

    def _connect(self) -> http.client.HTTPSConnection:
        try:
            return pinned_http_connection("https", self.host, self.port, context=self.context, timeout=self.timeout)
        except DomainError as error:
            raise BoardUnavailable(f"address refused: {self.host}") from error

    def get(self, url: str, limit: int) -> tuple[int, bytes]:
        """``(status, body)`` of a GET of ``url`` (on this reader's host)."""
        parts = urlsplit(url)
        if (parts.hostname, parts.port or 443) != (self.host, self.port) or parts.scheme != "https":
            raise BoardUnavailable(f"a link off the BOE's host: {url}")
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        for attempt in (1, 2):
            try:
                if self._connection is None:
                    self._connection = self._connect()
                self._connection.request("GET", path, headers={"Accept": "*/*", "User-Agent": "Ventanilla-TEU"})
                answer = self._connection.getresponse()
                body = answer.read(limit + 1)
                if answer.will_close or len(body) > limit:
                    self.close()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as error:
                self.close()
                if attempt == 2:
                    raise BoardUnavailable(f"connection lost: {error}") from error
                continue
            except (ssl.SSLError, TimeoutError, OSError, http.client.HTTPException) as error:
                self.close()
                raise BoardUnavailable(f"{type(error).__name__}: {error}") from error
            if len(body) > limit:
                raise BoardUnavailable(f"{url}: larger than {limit} bytes")
            return answer.status, body
        raise BoardUnavailable(f"{url}: no answer")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def announcements(self, day: date) -> tuple[list[Announcement], str]:
        """The day's announcements in the index's order (none when the day has no supplement), and a
        digest of the index as served (what a reader may key what it learnt of that index by)."""
        url = index_url(self.base_url, day)
        status, body = self.get(url, MAX_INDEX)
        if status == 404:
            return [], ""
        if status != 200:
            raise BoardUnavailable(f"{url}: HTTP {status}")
        return parse_index(body, url, day), hashlib.sha256(url.encode() + b"\n" + body).hexdigest()

    def pdf(self, announcement: Announcement) -> bytes:
        status, body = self.get(announcement.pdf_url, MAX_PDF)
        if status != 200 or not body.startswith(b"%PDF-"):
            raise BoardUnavailable(f"{announcement.pdf_url}: HTTP {status}, not a PDF")
        return body


def _text(element) -> str:
    return " ".join(" ".join(element.itertext()).split())


_CHARSET = re.compile(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_\-]+)", re.IGNORECASE)


def _decoded(body: bytes) -> str:
    """The page as text: in the charset it declares (the BOE's pages have been ISO-8859-1 and UTF-8),
    else UTF-8, else Latin-1."""
    declared = _CHARSET.search(body[:4096])
    for charset in ([declared.group(1).decode()] if declared else []) + ["utf-8", "latin-1"]:
        try:
            return body.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode("latin-1", "replace")


def parse_index(body: bytes, url: str, day: date) -> list[Announcement]:
    """The announcements of an index page (see the module's description of its shape)."""
    document = html.fromstring(_decoded(body), base_url=url)
    headings: list[str] = ["", "", "", "", ""]
    found: dict[str, Announcement] = {}
    for element in document.iter("h2", "h3", "h4", "h5", "h6", "li"):
        if element.tag in HEADINGS:
            level = HEADINGS[element.tag]
            headings[level] = _text(element)
            headings[level + 1 :] = [""] * (len(headings) - level - 1)
            continue
        if "notif" not in (element.get("class") or "").split():
            continue
        link = next((a for a in element.iter("a") if IDENTIFIER.search(a.get("href") or "")), None)
        if link is None:
            continue
        identifier = IDENTIFIER.search(link.get("href")).group()
        title_node = next(iter(element.iter("p")), None)
        title = _text(title_node) if title_node is not None else _text(element)
        named = [h for h in headings if h]
        found.setdefault(
            identifier,
            Announcement(
                identifier=identifier,
                day=day,
                title=title[:2000],
                issuer=named[-1] if named else "",
                department=named[-2] if len(named) > 1 else "",
                pdf_url=urljoin(url, link.get("href")),
            ),
        )
    return list(found.values())


def pdf_text(data: bytes) -> str:
    """The text of a PDF, page after page (empty for one pypdf cannot read)."""
    try:
        reader = PdfReader(io.BytesIO(data))
        return "\n".join(page.extract_text() or "" for page in reader.pages)
    except (PdfReadError, ValueError, KeyError, TypeError) as error:
        log.warning("an edict's PDF could not be read: %s", error)
        return ""
