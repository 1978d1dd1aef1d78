"""Typed errors. Each names the thing that is wrong so a user can fix it without reading code."""


class AudioSynthError(Exception):
    """Base class for errors raised by audio-synth."""


class ConfigError(AudioSynthError):
    """A run configuration is invalid (raised before any work starts)."""


class CatalogError(AudioSynthError):
    """An input catalog cannot be read at all (unreadable file, missing required columns)."""


class UnknownVoiceError(AudioSynthError):
    """A voice or language is not offered by the chosen generator."""


class GenerationError(AudioSynthError):
    """One item could not be synthesized; recorded per item, never fatal to the run."""


class StorageError(AudioSynthError):
    """The output location cannot be read or written."""


class PluginError(AudioSynthError):
    """A generator or validator plug-in is unknown or cannot be built."""
