"""Config sections of responsible synthesis, shared by every generating job (catalog, audiobook,
dataset): the watermark every file carries and the signature over every run's files.

Secrets never sit in a config: each section names where its key comes from (an environment variable
or a file), and the key itself travels sealed to the workers that need it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WatermarkConfig(_Strict):
    enabled: bool = Field(True, description="mark every generated file (off: no mark, no table)")
    key_env: str = Field(
        "AUDIO_SYNTH_WATERMARK_KEY", description="environment variable holding the watermark key"
    )
    key_file: str | None = Field(
        None,
        description="file holding the key when the variable is unset (default: created once under "
        "$AUDIO_SYNTH_HOME/keys/ with mode 0600)",
    )
    min_snr_db: float = Field(
        35.0, ge=20.0, le=80.0, description="the mark stays at least this far below the audio (dB)"
    )
    threshold_z: float = Field(
        5.0,
        gt=0,
        description="sync z-score above which detection reports a mark (5.0: at most 0.1 % false "
        "positives on unmarked speech, docs/watermark.md)",
    )


class ProvenanceConfig(_Strict):
    sign: bool = Field(True, description="sign each run's manifest of files (Ed25519)")
    key_env: str = Field(
        "AUDIO_SYNTH_SIGNING_KEY", description="environment variable holding the Ed25519 key (PEM)"
    )
    key_file: str | None = Field(
        None,
        description="PEM file of the key when the variable is unset (default: created once under "
        "$AUDIO_SYNTH_HOME/keys/ with mode 0600)",
    )
    c2pa: bool = Field(
        True,
        description="a C2PA manifest on every catalog and dataset item (WAV embedded, FLAC a .c2pa "
        "sidecar) and audiobook deliverable, signed with the run key: ~0.4-1.1 ms CPU per 3-10 s "
        "item, 9-26 % of espeak synthesis (docs/provenance.md); part of item ids, so turning it "
        "on or off regenerates once",
    )


class ConsentConfig(_Strict):
    """Consent for voices that imitate real people (audio_synth_core/voices/consent.py)."""

    on_revoked: Literal["quarantine", "remove"] = Field(
        "quarantine",
        description="what the next run does with audio of the previous run made with a persona "
        "whose consent was revoked: move it under quarantine/ or delete it (audited either way)",
    )
    registry_url: str | None = Field(
        None,
        description="registry of personas and consent records (default: the output itself); "
        "read with output.storage_options",
    )
