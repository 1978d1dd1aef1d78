"""Plug-in machinery: entry-point registry, strict parameters, per-process caches."""
