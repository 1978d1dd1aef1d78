"""Redaction of credentials: what counts as a secret, and copies of configs and text without them.

Three kinds of secret are recognized:

- values under a secret-looking key, at any depth (``key``, ``secret``, ``token``, ``password``,
  ``aws_session_token``, ``client_kwargs.aws_secret_access_key``, ``accountKey``, ...; matched
  case-insensitively on the key's words, so ``max_tokens`` or ``keyboard`` are not secrets);
- the password of a URL with ``user:password@`` and secret-named query or ``;``-separated
  parameters (``?X-Amz-Signature=...``, ``sig=...``, ``AccountKey=...;``);
- the values of secret-looking environment variables (``AWS_SESSION_TOKEN``, ``HF_TOKEN``, ...),
  wherever they appear inside a string.

Redaction keeps key names and replaces values with ``***``, so a redacted config still says which
credentials were configured. Nothing here is reversible: the real values travel in-process.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "***"

# Key words that mark a value as a credential (after splitting snake, kebab and camel case).
_SECRET_WORDS = frozenset(
    {
        "key",
        "secret",
        "token",
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "credential",
        "credentials",
        "auth",
        "authorization",
        "signature",
        "cookie",
        "apikey",
    }
)
# Names written as one word ("apikey", "SECRETACCESSKEY", "connectionstring").
_SECRET_FRAGMENTS = (
    "password",
    "passwd",
    "secret",
    "credential",
    "apikey",
    "accesskey",
    "privatekey",
    "accountkey",
    "sessiontoken",
    "accesstoken",
    "refreshtoken",
    "authtoken",
    "bearertoken",
    "securitytoken",
    "sastoken",
    "connectionstring",
)
# Environment variables that name where a credential is, not the credential itself.
_ENV_NOT_SECRET_NAMES = frozenset({"PWD", "OLDPWD"})  # the shell's folders
_ENV_NOT_SECRET_SUFFIXES = ("_FILE", "_PATH", "_DIR", "_SOCK", "_HOST", "_PORT", "_REGION")
_FILE_SUFFIXES = (".json", ".pem", ".key", ".p12", ".ini", ".cfg", ".yaml", ".yml", ".toml")
_LOCATION_WORDS = frozenset({"env", "file", "path", "dir"})
# Shorter values are not scrubbed out of free text: they would mangle ordinary words.
MIN_SECRET_CHARS = 6

# URL parameters that are credentials though their names are too short to count as secret keys
# ("sig" of an Azure SAS URL; as a config key it would catch metrics like ``dnsmos_sig``).
_SECRET_URL_PARAMS = frozenset({"sig"})
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
_URL_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@'\"]*):(?P<pw>[^/\s@'\"]+)@")
_PARAM = re.compile(r"(?P<head>[?&;](?P<name>[A-Za-z0-9_.-]+)=)(?P<value>[^&#;\s'\"]+)")


def is_secret_key(name: str) -> bool:
    """Whether a config key or environment variable name holds a credential."""
    split = [w.lower() for w in _WORD_SPLIT.split(str(name)) if w]
    # ``key_env``, ``key_file``: where a credential is found, not the credential itself.
    if split and split[-1] in _LOCATION_WORDS:
        return False
    words = set(split)
    if words & _SECRET_WORDS:
        return True
    flat = re.sub(r"[^a-z0-9]", "", str(name).lower())
    return any(fragment in flat for fragment in _SECRET_FRAGMENTS)


def redact_url(text: str) -> str:
    """``text`` with URL passwords and secret-named URL/connection-string parameters replaced."""
    text = _URL_USERINFO.sub(lambda m: f"{m['head']}:{REDACTED}@", text)

    def _param(m: re.Match[str]) -> str:
        name = m["name"]
        secret = name.lower() in _SECRET_URL_PARAMS or is_secret_key(name)
        return m["head"] + REDACTED if secret else m[0]

    return _PARAM.sub(_param, text)


def env_secrets(environ: Mapping[str, str] | None = None) -> set[str]:
    """Values of secret-looking environment variables (long enough to scrub safely)."""
    environ = os.environ if environ is None else environ
    return {
        value
        for name, value in environ.items()
        if is_secret_key(name)
        and name.upper() not in _ENV_NOT_SECRET_NAMES
        and not name.upper().endswith(_ENV_NOT_SECRET_SUFFIXES)
        and len(value) >= MIN_SECRET_CHARS
        and not _is_path(value)
    }


def _is_path(value: str) -> bool:
    """A credential file's location (GOOGLE_APPLICATION_CREDENTIALS=/path/key.json) is no secret."""
    if value.startswith(("/", "~", "./")) and value.endswith(_FILE_SUFFIXES):
        return True
    return os.path.exists(value)


def collect_secrets(value: Any, *, under_secret: bool = False) -> set[str]:
    """Every credential string inside a nested config: values under secret keys and URL passwords
    (for scrubbing free text such as log lines and error messages)."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        for key, inner in value.items():
            found |= collect_secrets(inner, under_secret=under_secret or is_secret_key(str(key)))
    elif isinstance(value, list | tuple | set | frozenset):
        for inner in value:
            found |= collect_secrets(inner, under_secret=under_secret)
    elif isinstance(value, str):
        if under_secret and len(value) >= MIN_SECRET_CHARS:
            found.add(value)
        found |= {m["pw"] for m in _URL_USERINFO.finditer(value) if len(m["pw"]) >= 3}
    return found


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with URL credentials, the given secret values and secret environment variable
    values replaced by ``***``."""
    return _scrub(str(text), {*secrets, *env_secrets()})


def _scrub(text: str, known: set[str]) -> str:
    text = redact_url(text)
    # Longest first, so a secret that contains another is replaced whole.
    for secret in sorted(known, key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A JSON-like copy of ``value`` with every credential replaced by ``***`` (key names kept).

    ``secrets`` are extra values to scrub out of every string (e.g. those of another config)."""
    known = {*secrets, *env_secrets()}
    return _redact(value, known, False)


def scrub(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of ``value`` with credentials removed from its strings only (keys are not judged):
    for run summaries, whose keys are metric names, not config keys."""
    known = {*secrets, *env_secrets()}

    def walk(inner: Any) -> Any:
        if isinstance(inner, Mapping):
            return {key: walk(v) for key, v in inner.items()}
        if isinstance(inner, list | tuple):
            return [walk(v) for v in inner]
        return _scrub(inner, known) if isinstance(inner, str) else inner

    return walk(value)


def _redact(value: Any, known: set[str], under_secret: bool) -> Any:
    if isinstance(value, Mapping):
        return {
            key: _redact(inner, known, under_secret or is_secret_key(str(key)))
            for key, inner in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact(inner, known, under_secret) for inner in value]
    if value is None:
        return None  # an unset credential is not a secret, and saying it is unset helps
    if under_secret:
        return REDACTED
    if isinstance(value, str):
        return _scrub(value, known)
    return value


def has_redacted(value: Any) -> list[str]:
    """Dotted paths of values that are already redacted (``***``) under secret keys."""
    out: list[str] = []

    def walk(prefix: str, inner: Any, under_secret: bool) -> None:
        if isinstance(inner, Mapping):
            for key, v in inner.items():
                walk(
                    f"{prefix}.{key}" if prefix else str(key), v, under_secret or is_secret_key(key)
                )
        elif isinstance(inner, list | tuple):
            for i, v in enumerate(inner):
                walk(f"{prefix}[{i}]", v, under_secret)
        elif under_secret and inner == REDACTED:
            out.append(prefix)

    walk("", value, False)
    return out


class RedactingFilter(logging.Filter):
    """Rewrites every record it sees (message, arguments, traceback text) without credentials.

    Attach it to handlers (a handler filter sees records propagated from child loggers)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = set(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's problem, not ours
            return True
        record.msg = redact_text(message, self.secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text, self.secrets)
        return True
