"""Audiobook production: books (EPUB, Markdown, text) -> chapters -> chunk items -> delivered
chapter files, retail sample, M4B and book.json (see flows/audiobook.py)."""
