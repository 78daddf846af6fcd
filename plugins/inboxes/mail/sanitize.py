"""HTML from e-mail made safe to show, and plain text made from HTML when a message has no text part.

``sanitize_html`` keeps structure, text formatting, tables, links and a safe subset of inline styles
(mail layouts live in ``style`` attributes); drops scripts, styles, forms, frames, event handlers and
``javascript:`` URLs (nh3/ammonia, an allow-list). Remote images are dropped by default — they tell the
sender when and where a message is read — and so are ``background`` images; ``cid:`` images (parts of
the message itself) are kept for ``rewrite_cid_images`` to point at our own file URLs.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable
from html.parser import HTMLParser

import nh3

_TAGS = (set(nh3.ALLOWED_TAGS) | {"font", "span", "div", "center", "u", "s", "big", "small"}) - {"area", "map"}
_ATTRIBUTES = {
    "*": {"style", "title", "dir", "lang", "align", "valign", "width", "height"},
    "a": {"href", "name"},
    "img": {"src", "alt", "width", "height", "border"},
    "font": {"color", "face", "size"},
    "table": {"border", "cellpadding", "cellspacing", "bgcolor", "summary"},
    "td": {"colspan", "rowspan", "bgcolor", "nowrap"},
    "th": {"colspan", "rowspan", "bgcolor", "nowrap", "scope"},
    "tr": {"bgcolor"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type"},
    "ul": {"type"},
    "li": {"value"},
    "blockquote": {"cite", "type"},
    "bdo": {"dir"},
    "time": {"datetime"},
}
# Layout and typography only: nothing that can load a URL (background, list-style-image, content...).
_STYLE_PROPERTIES = {
    "color",
    "background-color",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "font-variant",
    "line-height",
    "letter-spacing",
    "text-align",
    "text-decoration",
    "text-indent",
    "text-transform",
    "vertical-align",
    "white-space",
    "word-break",
    "direction",
    "margin",
    "margin-top",
    "margin-right",
    "margin-bottom",
    "margin-left",
    "padding",
    "padding-top",
    "padding-right",
    "padding-bottom",
    "padding-left",
    "border",
    "border-top",
    "border-right",
    "border-bottom",
    "border-left",
    "border-color",
    "border-style",
    "border-width",
    "border-collapse",
    "border-spacing",
    "border-radius",
    "width",
    "min-width",
    "max-width",
    "height",
    "min-height",
    "max-height",
    "display",
    "table-layout",
    "list-style-type",
}
_URL_SCHEMES = {"http", "https", "mailto", "tel", "cid"}
_CLEAN_CONTENT = {
    "script",
    "style",
    "title",
    "head",
    "noscript",
    "iframe",
    "object",
    "embed",
    "template",
    "svg",
    "math",
}


def _attribute_filter(allow_remote: bool) -> Callable[[str, str, str], str | None]:
    def keep(tag: str, attribute: str, value: str) -> str | None:
        if tag == "img" and attribute == "src":
            scheme = value.strip().split(":", 1)[0].lower() if ":" in value else ""
            if scheme == "cid" or (allow_remote and scheme in ("http", "https")):
                return value
            return None
        if tag == "a" and attribute == "href" and value.strip().lower().startswith("cid:"):
            return None
        return value

    return keep


def sanitize_html(html: str, *, allow_remote_images: bool = False) -> str:
    """Safe HTML for display inside our pages (a fragment: no ``<html>``, ``<head>`` or ``<body>``)."""
    if not html:
        return ""
    return nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags=_CLEAN_CONTENT,
        attributes=_ATTRIBUTES,
        attribute_filter=_attribute_filter(allow_remote_images),
        url_schemes=_URL_SCHEMES,
        filter_style_properties=_STYLE_PROPERTIES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


_CID_SRC = re.compile(r"""(<img\b[^>]*?\bsrc=)(["'])cid:([^"']+)\2""", re.IGNORECASE)


def rewrite_cid_images(html: str, url_for: Callable[[str], str | None]) -> str:
    """Point ``<img src="cid:...">`` of sanitised HTML at ``url_for(content_id)`` (None drops the image source).

    Run on the output of ``sanitize_html``: the URL returned is ours and is escaped here.
    """

    def replace(match: re.Match) -> str:
        content_id = html_lib.unescape(match.group(3)).strip().strip("<>")
        url = url_for(content_id)
        if url is None:
            return f'{match.group(1)}""'
        return f"{match.group(1)}{match.group(2)}{html_lib.escape(url, quote=True)}{match.group(2)}"

    return _CID_SRC.sub(replace, html)


def cid_references(html: str) -> set[str]:
    """The Content-IDs an HTML body shows as images."""
    return {html_lib.unescape(m.group(3)).strip().strip("<>") for m in _CID_SRC.finditer(html or "")}


# --- HTML to text ---------------------------------------------------------------------------------

_BLOCK = {
    "p", "div", "br", "tr", "table", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6",
    "blockquote", "pre", "hr", "section", "article", "header", "footer", "address", "dd", "dt", "dl",
}  # fmt: skip
_SKIP = {"script", "style", "head", "title", "noscript", "template", "svg"}
_PRE_SPACE, _PRE_TAB = "\x00", "\x01"


class _TextMaker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.pre = 0
        self.href: str | None = None
        self.link_text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP:
            self.skip += 1
            return
        if tag == "pre":
            self.pre += 1
        if tag == "br":
            self.out.append("\n")
        elif tag in _BLOCK:
            self.out.append("\n\n" if tag in ("p", "div", "table", "blockquote", "pre") else "\n")
        if tag == "li":
            self.out.append("- ")
        if tag == "a":
            self.href = dict(attrs).get("href")
            self.link_text = []
        if tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.out.append(f"[{alt}]")

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag in _SKIP:
            self.skip -= 1

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
            return
        if tag == "pre":
            self.pre = max(0, self.pre - 1)
        if tag == "a" and self.href:
            text = "".join(self.link_text).strip()
            href = self.href.strip()
            if href.lower().startswith(("http://", "https://")) and href != text:
                self.out.append(f" <{href}>")
            self.href = None
        if tag in ("td", "th"):
            self.out.append("\t")  # between cells; the last one's is trimmed with the line
        if tag in _BLOCK and tag != "br":
            self.out.append("\n")

    def handle_data(self, data):
        if self.skip:
            return
        # Preformatted text is kept as written (protected from the folding in html_to_text).
        data = data.replace(" ", _PRE_SPACE).replace("\t", _PRE_TAB) if self.pre else re.sub(r"\s+", " ", data)
        self.out.append(data)
        if self.href is not None:
            self.link_text.append(data)


def html_to_text(html: str) -> str:
    """Readable plain text from an HTML body: paragraphs, line breaks, list items, link targets."""
    if not html:
        return ""
    maker = _TextMaker()
    try:
        maker.feed(html)
        maker.close()
    except Exception:  # HTMLParser is lenient, but never let a body break parsing
        return re.sub(r"<[^>]+>", " ", html)
    text = "\n".join(line.strip(" ").rstrip() for line in "".join(maker.out).splitlines())
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return text.replace(_PRE_SPACE, " ").replace(_PRE_TAB, "\t")
