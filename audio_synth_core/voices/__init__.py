"""Voices beyond a generator's own: versioned voice personas (``personas``) and the consent that
voices imitating real people need (``consent``), both kept in a registry on the output storage."""

from audio_synth_core.voices.consent import ConsentError, ConsentRecord
from audio_synth_core.voices.personas import Persona, PersonaError, PersonaSpec

__all__ = ["ConsentError", "ConsentRecord", "Persona", "PersonaError", "PersonaSpec"]
