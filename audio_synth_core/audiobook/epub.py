"""Reading EPUB 2 and 3 books: chapters from the navigation document (EPUB 3 nav or EPUB 2 NCX)
laid over the spine, text by block element so paragraph boundaries survive.

A spine document the table of contents points at starts a chapter (its TOC label is the title);
one it does not point at continues the chapter before it (books split long chapters over several
files). Without a TOC every spine document is a chapter titled by its first heading.
"""

from __future__ import annotations

import io
import posixpath
import re
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from audio_synth_core.audiobook.model import BookError, RawChapter
from audio_synth_core.inputs.text import normalize

# Font obfuscation (IDPF, Adobe) is not DRM: the text is readable.
_FONT_OBFUSCATION = {
    "http://www.idpf.org/2008/embedding",
    "http://ns.adobe.com/pdf/enc#RC",
}
_BLOCKS = {"p", "div", "li", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "dd", "dt"}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_SKIP = {"script", "style", "head", "title", "nav", "aside", "figcaption", "sup", "rt"}


@dataclass(frozen=True)
class EpubMeta:
    title: str | None
    author: str | None
    language: str | None


def check_container(data: bytes, name: str) -> None:
    """Raise a BookError when ``data`` is not a readable EPUB or is DRM-encrypted."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise BookError(f"book {name!r} is not a readable EPUB (corrupt zip: {exc})") from None
    if bad is not None:
        raise BookError(f"book {name!r} is corrupt: member {bad!r} fails its checksum")
    if "META-INF/encryption.xml" in archive.namelist():
        xml = archive.read("META-INF/encryption.xml").decode("utf-8", "replace")
        algorithms = set(re.findall(r'EncryptionMethod[^>]*Algorithm="([^"]+)"', xml))
        encrypted = "EncryptedData" in xml and (not algorithms or algorithms - _FONT_OBFUSCATION)
        if encrypted:
            raise BookError(
                f"book {name!r} is DRM-encrypted (META-INF/encryption.xml encrypts its content): "
                "narrate a DRM-free edition"
            )


def _tag(node: Any) -> str:
    return node.tag.split("}")[-1].lower() if isinstance(node.tag, str) else ""


def _text_of(element: Any) -> str:
    """The visible text of one element (notes, scripts and ruby annotations left out)."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        if _tag(node) in _SKIP:
            return
        if _tag(node) == "br":
            parts.append(" ")
        if node.text:
            parts.append(node.text)
        for child in node:
            walk(child)
            if child.tail:
                parts.append(child.tail)

    walk(element)
    return normalize("".join(parts))


def _skipped(node: Any, root: Any) -> bool:
    while node is not None and node is not root:
        if _tag(node) in _SKIP:
            return True
        node = node.getparent()
    return False


def blocks_of(html: bytes) -> tuple[list[tuple[str, str]], int]:
    """(tag, text) of every innermost block element in reading order, and the image count."""
    import lxml.html

    try:
        root = lxml.html.document_fromstring(html)
    except Exception:  # lxml raises ParserError / XMLSyntaxError on empty or broken markup
        return [], 0
    out: list[tuple[str, str]] = []
    body = root.find("body") if root.find("body") is not None else root
    for el in body.iter():
        tag = _tag(el)
        if tag not in _BLOCKS or _skipped(el, body):
            continue
        # Only innermost blocks: a div holding paragraphs is read through its paragraphs.
        if any(_tag(c) in _BLOCKS for c in el.iterdescendants()):
            continue
        text = _text_of(el)
        if text:
            out.append((tag, text))
    images = sum(1 for el in body.iter() if _tag(el) in ("img", "svg"))
    return out, images


def _toc_titles(book: Any) -> dict[str, str]:
    """href (without fragment) -> title of the first TOC entry pointing into it."""
    from ebooklib import epub

    titles: dict[str, str] = {}
    names = {unquote(item.get_name()) for item in book.get_items()}
    # ebooklib resolves an EPUB 3 nav's hrefs against the package but passes an EPUB 2 NCX's
    # through as written, relative to the NCX file: an NCX not beside the package (Misc/toc.ncx,
    # hrefs ../Text/...) would match no document and merge the whole book into one chapter.
    ncx = next((item for item in book.get_items() if isinstance(item, epub.EpubNcx)), None)
    ncx_dir = posixpath.dirname(unquote(ncx.get_name())) if ncx is not None else ""

    def resolve(href: str) -> str:
        path = unquote(href.split("#")[0])
        if path in names or not ncx_dir:
            return path
        return posixpath.normpath(posixpath.join(ncx_dir, path))

    def walk(entries: Any) -> None:
        for entry in entries:
            if isinstance(entry, tuple):  # (Section, [children])
                section, children = entry
                add(section)
                walk(children)
            else:
                add(entry)

    def add(entry: Any) -> None:
        href = getattr(entry, "href", None)
        title = getattr(entry, "title", None)
        if href and title:
            titles.setdefault(resolve(href), normalize(title))

    walk(book.toc or [])
    return titles


def _meta(book: Any, field: str) -> str | None:
    values = book.get_metadata("DC", field)
    return normalize(values[0][0]) if values and values[0][0] else None


def read_epub(data: bytes, name: str) -> tuple[EpubMeta, list[RawChapter]]:
    """Metadata and chapters (in spine order) of an EPUB's bytes."""
    check_container(data, name)
    from ebooklib import ITEM_DOCUMENT, epub

    with tempfile.TemporaryDirectory(prefix="audio-synth-epub-") as tmp:
        path = Path(tmp, "book.epub")
        path.write_bytes(data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                book = epub.read_epub(str(path), {"ignore_ncx": False})
        except Exception as exc:  # ebooklib raises EpubException, KeyError, lxml errors...
            raise BookError(
                f"book {name!r} is not a readable EPUB: {type(exc).__name__}: {exc}"
            ) from None
    meta = EpubMeta(_meta(book, "title"), _meta(book, "creator"), _meta(book, "language"))
    titles = _toc_titles(book)
    chapters: list[RawChapter] = []
    current: dict[str, Any] | None = None
    total_images = 0
    for idref, _linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != ITEM_DOCUMENT:
            continue
        if isinstance(item, epub.EpubNav) or "nav" in (getattr(item, "properties", None) or []):
            continue
        blocks, images = blocks_of(item.get_content())
        total_images += images
        href = unquote(item.get_name())
        toc_title = titles.get(href)
        if current is None or toc_title is not None or not titles:
            heading = next((t for tag, t in blocks if tag in _HEADINGS), None)
            title = toc_title or heading or f"Chapter {len(chapters) + 1}"
            current = {"title": title, "paragraphs": [], "images": 0}
            chapters.append(current)  # type: ignore[arg-type]
        paragraphs = current["paragraphs"]
        for tag, text in blocks:
            # The chapter's own heading is read from its title, not twice.
            if tag in _HEADINGS and not paragraphs and text.lower() == current["title"].lower():
                continue
            paragraphs.append(text)
        current["images"] += images
    out = [
        RawChapter(
            c["title"],
            tuple(c["paragraphs"]),
            "image only" if c["images"] and not c["paragraphs"] else None,
        )
        for c in chapters  # type: ignore[union-attr]
    ]
    if not any(c.paragraphs for c in out):
        kind = "image-only" if total_images else "empty"
        raise BookError(
            f"book {name!r} has no text to narrate ({kind}: {len(out)} documents in its spine, "
            f"{total_images} images)"
        )
    return meta, out
