"""Reading books: EPUB chapters from nav + spine, Markdown and text headings, clear errors."""

from __future__ import annotations

import pytest

from audio_synth_core.audiobook.books import find_books, read_book
from audio_synth_core.audiobook.model import BookError
from audio_synth_core.errors import ConfigError
from tests.core.audiobook.bookfiles import (
    make_corrupt_epub,
    make_drm_epub,
    make_epub,
    make_epub2,
    make_image_only_epub,
    make_markdown_book,
)


def test_epub_chapters_follow_nav_and_spine(tmp_path):
    path = make_epub(tmp_path / "sea.epub")
    (src,) = find_books(str(path))
    book = read_book(src)
    assert book.title == "Sea Stories" and book.author == "Test Author"
    assert [c.title for c in book.chapters] == [
        "The Harbour",
        "The Island",
        "Nothing Here",
        "A Picture",
        "The Return",
    ]
    first = book.chapters[0]
    # The heading is read as the title, not again as text; paragraphs stay apart.
    assert first.paragraphs == (
        "The ferry left the harbour at dawn.",
        "Gulls followed it out to sea.",
    )
    assert book.chapters[2].skipped_reason == "no text"
    assert book.chapters[3].skipped_reason == "no text (image only)"
    assert [c.number for c in book.narrated] == [1, 2, 5]
    assert book.words == 13 + 10 + 6


@pytest.mark.parametrize("ncx_folder", ["", "Misc"])
def test_epub2_chapters_follow_ncx_and_spine(tmp_path, ncx_folder):
    import posixpath
    import zipfile

    path = make_epub2(tmp_path / "tales.epub", ncx_folder=ncx_folder)
    with zipfile.ZipFile(path) as z:  # really EPUB 2: a 2.0 package, toc.ncx, no nav document
        opf = z.read("EPUB/content.opf").decode()
        assert 'version="2.0"' in opf and 'properties="nav"' not in opf
        assert posixpath.join("EPUB", ncx_folder, "toc.ncx") in z.namelist()
    book = read_book(find_books(str(path))[0])
    assert book.title == "Old Tales" and book.author == "Test Author"
    # Spine order and NCX titles; an in-text heading that differs from its title is read as text.
    assert book.chapter_list() == [
        {"number": 1, "title": "I. The Mill", "words": 14, "skipped": None},
        {"number": 2, "title": "II. The Miller", "words": 8, "skipped": None},
        {"number": 3, "title": "III. The Flood", "words": 11, "skipped": None},
    ]
    assert book.chapters[1].paragraphs == ("Chapter Two", "The miller rose before the sun.")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (make_drm_epub, "DRM-encrypted"),
        (make_corrupt_epub, "not a readable EPUB"),
        (make_image_only_epub, "no text to narrate \\(image-only"),
    ],
)
def test_unusable_epubs_name_the_book(tmp_path, make, message):
    path = make(tmp_path / "bad-book.epub")
    (src,) = find_books(str(path))
    with pytest.raises(BookError, match=message) as err:
        read_book(src)
    assert "bad-book" in str(err.value)


def test_font_obfuscation_is_not_drm(tmp_path):
    import io
    import zipfile

    from audio_synth_core.audiobook.epub import check_container

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("mimetype", "application/epub+zip")
        z.writestr(
            "META-INF/encryption.xml",
            "<encryption><EncryptedData><EncryptionMethod "
            'Algorithm="http://www.idpf.org/2008/embedding"/></EncryptedData></encryption>',
        )
    check_container(buf.getvalue(), "fonts")  # no error


def test_markdown_book_with_manifest(tmp_path):
    folder = make_markdown_book(tmp_path / "small")
    (src,) = find_books(str(folder))
    assert src.book_id == "small" and src.manifest.endswith("book.yaml")
    book = read_book(src)
    assert book.title == "Small Book" and book.author == "Test Writer"
    assert [c.title for c in book.chapters] == ["One", "Two"]
    assert book.chapters[1].paragraphs == ("The bread cost 3 coins.", "It was warm.")


def test_plain_text_chapters_and_empty_book(tmp_path):
    path = tmp_path / "tale.txt"
    path.write_text("Chapter 1\n\nIt began.\n\nChapter 2\n\nIt ended.\n", encoding="utf-8")
    book = read_book(find_books(str(path))[0])
    assert [(c.title, c.paragraphs) for c in book.chapters] == [
        ("Chapter 1", ("It began.",)),
        ("Chapter 2", ("It ended.",)),
    ]
    empty = tmp_path / "empty.md"
    empty.write_text("# Title only\n\n## Nothing\n", encoding="utf-8")
    with pytest.raises(BookError, match="'empty.*no text"):
        read_book(find_books(str(empty))[0])


def test_folder_of_books_and_bad_manifest(tmp_path):
    make_markdown_book(tmp_path / "lib" / "small")
    make_epub(tmp_path / "lib" / "sea.epub")
    ids = [b.book_id for b in find_books(str(tmp_path / "lib"))]
    assert ids == ["sea", "small"]
    (tmp_path / "lib" / "small" / "book.yaml").write_text("titel: typo\n")
    with pytest.raises(ConfigError, match="titel"):
        find_books(str(tmp_path / "lib"))
    with pytest.raises(BookError, match="does not exist"):
        find_books(str(tmp_path / "nowhere"))
