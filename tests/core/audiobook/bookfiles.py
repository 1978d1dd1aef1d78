"""Real test books: an EPUB 3 built with ebooklib (nav + NCX + spine), Markdown, DRM and corrupt
files. Texts are a few short sentences so narration takes seconds."""

from __future__ import annotations

import io
import posixpath
import zipfile
from pathlib import Path

import numpy as np

CHAPTERS = [
    ("The Harbour", ["The ferry left the harbour at dawn.", "Gulls followed it out to sea."]),
    ("The Island", ["On the island there were 12 houses and one shop."]),
    ("Nothing Here", []),  # an empty chapter: reported by name
    ("A Picture", None),  # an image-only chapter
    ("The Return", ["They came home before the storm."]),
]


def _png() -> bytes:
    """A valid 1x1 PNG."""
    return bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a5e6a3a90000000049454e44ae426082"
    )


def make_epub(path: Path, chapters=CHAPTERS, title: str = "Sea Stories") -> Path:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("test-sea-stories")
    book.set_title(title)
    book.set_language("en")
    book.add_author("Test Author")
    items = []
    for i, (name, paragraphs) in enumerate(chapters, start=1):
        item = epub.EpubHtml(title=name, file_name=f"chap{i}.xhtml", lang="en")
        if paragraphs is None:
            book.add_item(
                epub.EpubImage(
                    uid=f"img{i}", file_name=f"img{i}.png", media_type="image/png", content=_png()
                )
            )
            body = f'<div><img src="img{i}.png" alt=""/></div>'
        else:
            body = f"<h1>{name}</h1>" + "".join(f"<p>{p}</p>" for p in paragraphs)
        item.content = f"<html><body>{body}</body></html>"
        book.add_item(item)
        items.append(item)
    book.toc = [
        epub.Link(it.file_name, name, f"c{i}")
        for i, (it, (name, _)) in enumerate(zip(items, chapters, strict=True))
    ]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    epub.write_epub(str(path), book)
    return path


# An EPUB 2 book: (NCX title, in-text heading, paragraphs) per chapter, in reading order.
EPUB2_CHAPTERS = [
    (
        "I. The Mill",
        "Chapter One",
        ["The mill stood by the river.", "It ground corn for the town."],
    ),
    ("II. The Miller", "Chapter Two", ["The miller rose before the sun."]),
    ("III. The Flood", "Chapter Three", ["In spring the river rose and took the wheel."]),
]


def make_epub2(path: Path, chapters=EPUB2_CHAPTERS, ncx_folder: str = "") -> Path:
    """An EPUB 2 book: a version 2.0 package whose only table of contents is toc.ncx (no nav
    document), chapters under Text/ and listed in the manifest in reverse, so only the spine gives
    the reading order. ``ncx_folder`` puts toc.ncx in a subfolder (its hrefs then start ``../``,
    as NCX hrefs are relative to the NCX file)."""
    import re

    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("test-old-tales")
    book.set_title("Old Tales")
    book.set_language("en")
    book.add_author("Test Author")
    items = []
    for i, (_, heading, paragraphs) in enumerate(chapters, start=1):
        item = epub.EpubHtml(uid=f"chapter{i}", file_name=f"Text/chapter{i}.xhtml", lang="en")
        body = f'<h1 id="c{i}">{heading}</h1>' + "".join(f"<p>{p}</p>" for p in paragraphs)
        item.content = f"<html><body>{body}</body></html>"
        items.append(item)
    for item in reversed(items):
        book.add_item(item)
    up = "../" * len([part for part in ncx_folder.split("/") if part])
    book.toc = [
        epub.Link(f"{up}{item.file_name}#c{i}", title, f"navpoint-{i}")
        for i, (item, (title, _, _)) in enumerate(zip(items, chapters, strict=True), start=1)
    ]
    book.add_item(epub.EpubNcx(file_name=posixpath.join(ncx_folder, "toc.ncx")))
    book.spine = items
    built = path.with_suffix(".epub3.epub")
    epub.write_epub(str(built), book)
    # ebooklib writes every package as EPUB 3: make it a 2.0 package without EPUB 3 metadata.
    buf = io.BytesIO()
    with zipfile.ZipFile(built) as zin, zipfile.ZipFile(buf, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith(".opf"):
                opf = data.decode("utf-8").replace('version="3.0"', 'version="2.0"')
                opf = re.sub(r' prefix="[^"]*"', "", opf)
                opf = re.sub(r"\s*<meta property=\"dcterms:modified\">[^<]*</meta>", "", opf)
                data = opf.encode("utf-8")
            zout.writestr(info, data)
    built.unlink()
    path.write_bytes(buf.getvalue())
    return path


def make_drm_epub(path: Path) -> Path:
    """A valid EPUB whose META-INF/encryption.xml encrypts a content document (as DRM does)."""
    src = make_epub(path.with_suffix(".plain.epub"))
    xml = (
        '<?xml version="1.0"?><encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
        '<enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>'
        '<enc:CipherData><enc:CipherReference URI="EPUB/chap1.xhtml"/></enc:CipherData>'
        "</enc:EncryptedData></encryption>"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(buf, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, zin.read(info.filename))
        zout.writestr("META-INF/encryption.xml", xml)
    path.write_bytes(buf.getvalue())
    return path


def make_image_only_epub(path: Path) -> Path:
    return make_epub(path, [("Plate One", None), ("Plate Two", None)], "Pictures")


def make_corrupt_epub(path: Path) -> Path:
    data = make_epub(path.with_suffix(".ok.epub")).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


MARKDOWN = """# Small Book

## One

Anna met the baker. "Good morning," said the baker.

## Two

The bread cost 3 coins.

It was warm.
"""


def make_markdown_book(folder: Path, text: str = MARKDOWN, lexicon: list | None = None) -> Path:
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "small.md").write_text(text, encoding="utf-8")
    manifest = {
        "source": "small.md",
        "author": "Test Writer",
        "narrator": "Test Voice",
        "lexicon": lexicon or [],
        "retail_sample": {"min_s": 1, "max_s": 60},
    }
    (folder / "book.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
    return folder


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
