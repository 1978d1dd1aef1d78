"""Redaction: which keys are secrets, URL credentials, environment values, logs."""

from __future__ import annotations

import logging

import pytest

from audio_synth_core.config import secrets
from audio_synth_core.config.compare import CompareConfig
from audio_synth_core.config.models import RunConfig, TrainConfig, ValidateConfig
from audio_synth_core.config.secrets import REDACTED, redact, redact_text, redact_url


@pytest.mark.parametrize(
    "name",
    [
        "key",
        "secret",
        "token",
        "password",
        "Password",
        "PASSWD",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "AWS_SESSION_TOKEN",
        "client_secret",
        "accountKey",
        "account_key",
        "sas_token",
        "connection_string",
        "apikey",
        "api-key",
        "X-Amz-Security-Token",
        "Authorization",
        "private_key",
        "HF_TOKEN",
        "MLFLOW_TRACKING_PASSWORD",
        "PREFECT_API_AUTH_STRING",
        "credentials",
        "passphrase",
        "pwd",
    ],
)
def test_secret_keys(name):
    assert secrets.is_secret_key(name)


@pytest.mark.parametrize(
    "name",
    [
        "keyboard",
        "monkey",
        "max_tokens",
        "tokens",
        "tokenizer",
        "url",
        "endpoint_url",
        "region",
        "dnsmos_sig",
        "id_column",
        "anon",
        "username",
        "user",
        "voice",
        "seed",
        "name",
    ],
)
def test_ordinary_keys_are_not_secrets(name):
    assert not secrets.is_secret_key(name)


def _keys(model) -> set[str]:
    """Every field name of a config model, at any depth."""
    out: set[str] = set()
    for name, field in model.model_fields.items():
        out.add(name)
        annotation = field.annotation
        for inner in (*getattr(annotation, "__args__", ()), annotation):
            if isinstance(inner, type) and hasattr(inner, "model_fields"):
                out |= _keys(inner)
    return out


@pytest.mark.parametrize("model", [RunConfig, ValidateConfig, TrainConfig, CompareConfig])
def test_no_config_field_is_mistaken_for_a_secret(model):
    # Redaction must not hide ordinary settings: not one field of a shipped config model counts.
    assert [k for k in _keys(model) if secrets.is_secret_key(k)] == []


def test_redact_keeps_key_names_at_any_depth_and_case():
    config = {
        "name": "demo",
        "output": {
            "url": "s3://bucket/out",
            "storage_options": {
                "KEY": "AKIAEXAMPLE1",
                "Secret": "s3cr3t-value",
                "client_kwargs": {
                    "endpoint_url": "http://127.0.0.1:9000",
                    "aws_session_token": "tok-123456",
                },
                "anon": False,
                "token": None,
            },
        },
        "validators": [
            {"name": "privacy", "params": {"storage_options": {"password": "pw-123456"}}}
        ],
    }
    out = redact(config)
    opts = out["output"]["storage_options"]
    assert opts["KEY"] == opts["Secret"] == opts["client_kwargs"]["aws_session_token"] == REDACTED
    assert opts["client_kwargs"]["endpoint_url"] == "http://127.0.0.1:9000"
    assert opts["anon"] is False and opts["token"] is None  # unset is not a secret
    assert out["validators"][0]["params"]["storage_options"]["password"] == REDACTED
    assert out["output"]["url"] == "s3://bucket/out" and out["name"] == "demo"
    assert config["output"]["storage_options"]["KEY"] == "AKIAEXAMPLE1"  # a copy, input untouched


def test_a_secret_key_holding_a_mapping_keeps_its_inner_names():
    out = redact({"credentials": {"client_id": "abc1234567", "refresh_token": "r-7654321"}})
    assert out == {"credentials": {"client_id": REDACTED, "refresh_token": REDACTED}}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://alice:hunter22@host:8080/p", "https://alice:***@host:8080/p"),
        ("ftp://u:p%40ss@ftp.example.org/x", "ftp://u:***@ftp.example.org/x"),
        ("postgresql://mlflow:pw@db/mlflow", "postgresql://mlflow:***@db/mlflow"),
        ("ssh://git@github.com/x", "ssh://git@github.com/x"),  # a user name alone is no secret
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA1&X-Amz-Signature=abcdef&x=1",
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=***&X-Amz-Signature=***&x=1",
        ),
        (
            "https://acc.blob.core.windows.net/c?sv=2020&sig=abc%3D",
            "https://acc.blob.core.windows.net/c?sv=2020&sig=***",
        ),
        (
            "DefaultEndpointsProtocol=https;AccountName=acc;AccountKey=longkey==;EndpointSuffix=x",
            "DefaultEndpointsProtocol=https;AccountName=acc;AccountKey=***;EndpointSuffix=x",
        ),
        ("s3://bucket/prefix", "s3://bucket/prefix"),
    ],
)
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_url_passwords_inside_configs_and_text():
    config = {"tracking": {"mlflow_tracking_uri": "http://bob:pa55word@mlflow:5000"}}
    assert redact(config)["tracking"]["mlflow_tracking_uri"] == "http://bob:***@mlflow:5000"
    assert "pa55word" in secrets.collect_secrets(config)
    text = "cannot reach http://bob:pa55word@mlflow:5000 (pa55word rejected)"
    assert "pa55word" not in redact_text(text, secrets.collect_secrets(config))


def test_secret_environment_values_are_scrubbed_everywhere(monkeypatch):
    monkeypatch.setenv("AWS_SESSION_TOKEN", "FQoGZXIvYXdzEXAMPLETOKEN")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/home/me/creds.json")  # a path, no secret
    monkeypatch.setenv("SHORT_TOKEN", "1")  # too short to scrub out of text
    monkeypatch.setenv("PWD", "/a/working/dir")  # the shell's PWD is a folder, not a password
    found = secrets.env_secrets()
    assert "FQoGZXIvYXdzEXAMPLETOKEN" in found
    assert "/home/me/creds.json" not in found and "1" not in found
    assert "/a/working/dir" not in found
    assert redact_text("token FQoGZXIvYXdzEXAMPLETOKEN used") == "token *** used"
    assert redact({"note": "x FQoGZXIvYXdzEXAMPLETOKEN"}) == {"note": "x ***"}


def test_scrub_changes_strings_only():
    summary = {"metrics": {"key_count": 3}, "reports": {"html": "ftp://u:pw1234@h/r.html"}}
    assert secrets.scrub(summary) == {
        "metrics": {"key_count": 3},
        "reports": {"html": "ftp://u:***@h/r.html"},
    }


def test_has_redacted_names_the_paths():
    assert secrets.has_redacted(redact({"o": {"storage_options": {"key": "abcdefgh"}}})) == [
        "o.storage_options.key"
    ]
    assert secrets.has_redacted({"o": {"key": None}}) == []


def test_logging_filter_scrubs_message_args_and_traceback(caplog):
    logger = logging.getLogger("audio_synth_tests.secrets")
    log_filter = secrets.RedactingFilter({"planted-secret-1"})
    handler = logging.Handler()
    records: list[str] = []
    handler.emit = lambda record: records.append(logging.Formatter().format(record))
    handler.addFilter(log_filter)
    logger.addHandler(handler)
    try:
        logger.warning("opening %s with %s", "https://u:pw-9876@h/x", "planted-secret-1")
        try:
            raise RuntimeError("denied for planted-secret-1")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = "\n".join(records)
    assert "planted-secret-1" not in text and "pw-9876" not in text
    assert "https://u:***@h/x" in text and "RuntimeError: denied for ***" in text
