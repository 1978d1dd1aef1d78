"""Prefect flows, the Python API and the command line: the edge where storage, compute and
tracking are wired together. Importing it has no side effects; the CLI and the API apply the
environment defaults of ``flows.runtime.configure_environment`` before Prefect is imported."""
