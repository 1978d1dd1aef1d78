"""Prefect flows and the command line. Importing this package sets safe environment defaults
(Prefect and MLflow state under ./.audio-synth, no telemetry) before Prefect itself is imported."""

from flows.runtime import configure_environment

configure_environment()
