"""Where a run's signing key comes from: the environment, a file, or one created once per machine.

Order: the variable ``provenance.key_env`` names (a PEM), else ``provenance.key_file``, else
``$AUDIO_SYNTH_HOME/keys/signing_ed25519.pem``, created on first use with mode 0600. Logs say
where the key came from and its public fingerprint, never the key; the public key is written with
every signed run, so anyone can verify it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from audio_synth_core.config.responsible import ProvenanceConfig
from audio_synth_core.errors import ConfigError
from audio_synth_core.provenance.c2pa import MARK, C2paMaterial, check_signing, material_from_signer
from audio_synth_core.provenance.signing import Signer, new_private_key_pem
from flows.runtime import state_home

DEFAULT_KEY_NAME = "signing_ed25519.pem"


def default_key_path() -> Path:
    return state_home() / "keys" / DEFAULT_KEY_NAME


def _create_key(path: Path) -> None:
    """Write a new key with mode 0600 from the start (no moment where others may read it); a
    concurrent creator that wins the race keeps its key (O_EXCL)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as fh:
        fh.write(new_private_key_pem())


def _read_key_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {str(path)!r}: {exc.strerror or exc}") from None


def load_signer(cfg: ProvenanceConfig, logger: Any = None) -> Signer | None:
    """The signer for a run's listing (None when ``cfg.sign`` is off)."""
    if not cfg.sign:
        return None
    value = os.environ.get(cfg.key_env)
    if value:
        signer = Signer(value.encode(), f"environment variable {cfg.key_env}")
    elif cfg.key_file:
        path = Path(cfg.key_file).expanduser()
        signer = Signer(_read_key_file(path, "provenance.key_file"), f"file {path}")
    else:
        path = default_key_path()
        created = not path.exists()
        if created:
            _create_key(path)
        signer = Signer(_read_key_file(path, "the signing key"), f"file {path}")
        if created and logger is not None:
            logger.warning("created a new run signing key at %s (mode 0600)", path)
    if logger is not None:
        logger.warning(
            "signing runs with the key from %s (%s)", signer.source, signer.public_fingerprint
        )
    return signer


def c2pa_material(cfg: ProvenanceConfig, signer: Signer | None) -> C2paMaterial | None:
    """The C2PA certificate chain for deliverables, derived from the run signing key (None when
    ``provenance.c2pa`` or signing is off), checked by signing once (a ConfigError before any
    work when it cannot sign here). It holds the private key: seal it for workers."""
    if not cfg.c2pa or signer is None:
        return None
    material = material_from_signer(signer)
    check_signing(material)
    return material


def item_marks(marks: str | None, cfg: ProvenanceConfig) -> str | None:
    """The ``marks`` identity of catalog and dataset items (planning.build_plan / plan_key) with
    their C2PA manifests folded in: manifests are applied after synthesis (and an embedded one
    changes the file), so turning ``provenance.c2pa`` on or off makes new items, as a new
    watermark key does. Audiobook chunks carry none (its chapters do): their marks stay."""
    if not (cfg.c2pa and cfg.sign):
        return marks
    return f"{marks}+{MARK}" if marks else MARK
