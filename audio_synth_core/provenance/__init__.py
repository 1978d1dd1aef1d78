"""Provenance of generated audio: per-item records, signed run listings, verification, C2PA."""
