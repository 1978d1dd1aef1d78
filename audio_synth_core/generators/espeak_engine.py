"""libespeak-ng 1.52 in process, through the library that espeakng-loader ships, called with ctypes.

libespeak-ng is one global state machine per process, so the library is loaded and initialized once
(lazily, under ``LOCK``: ``engine()``) and every call into it holds that lock.

Determinism. Before every utterance the engine writes the C statics that carry state from one
utterance to the next (``espeak_statics``) back to their values right after initialization,
reseeds both random generators, and selects the voice and every parameter again: each utterance is
then synthesized exactly as the first one of a fresh process would be.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from audio_synth_core.errors import GenerationError, PluginError
from audio_synth_core.generators.espeak_statics import find_statics

# speak_lib.h constants.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000
# espeakPHONEMES: ``[[...]]`` in the text is phoneme input (pronunciation lexicons). Set only for
# texts that contain "[[", so every other text is synthesized exactly as before.
_PHONEME_INPUT = 0x100
_POS_CHARACTER = 1
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE, PARAM_WORDGAP = 1, 2, 3, 4, 7
_PHONEMES_IPA = 0x02
_EE_OK = 0
# Output buffer per callback in ms: large, so a sentence arrives in a handful of callbacks.
_BUFFER_MS = 1000
_RAND_SEED = 1
_GENDERS = {1: "male", 2: "female"}
_INT16_SCALE = 1.0 / 32768.0


class _Voice(ctypes.Structure):
    _fields_ = (
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    )


class _Event(ctypes.Structure):
    _fields_ = (
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_void_p),
    )


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class VariantInfo:
    """A voice variant (``!v/<name>``): changes pitch, formants and timbre of any base voice."""

    name: str
    display_name: str
    gender: str | None


def _parse_languages(ptr: int) -> list[tuple[int, str]]:
    """espeak's ``languages``: repeated (priority byte, NUL-terminated code), then a 0 byte."""
    out: list[tuple[int, str]] = []
    pos = ptr
    while (priority := ctypes.c_ubyte.from_address(pos).value) != 0:
        code = ctypes.string_at(pos + 1)
        out.append((priority, code.decode("utf-8", "replace").lower()))
        pos += 2 + len(code)
    return out


class Engine:
    """The process-wide libespeak-ng handle. Only ever used under ``LOCK``."""

    def __init__(self) -> None:
        import espeakng_loader

        self.data_path = espeakng_loader.get_data_path()
        lib_path = espeakng_loader.get_library_path()
        lib = ctypes.CDLL(lib_path)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_ListVoices.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_int,
            ctypes.c_int,
        ]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None
        self.lib = lib
        # The speechPlayer source (klatt variants) draws from libc rand(): reseeded per utterance.
        self.libc = ctypes.CDLL(None)

        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS,
            _BUFFER_MS,
            self.data_path.encode(),
            _INITIALIZE_DONT_EXIT,
        )
        if rate <= 0:
            raise PluginError(f"espeak_Initialize failed ({rate}) with data at {self.data_path}")
        self.sample_rate_hz = int(rate)
        self.version = lib.espeak_Info(None).decode()

        self._chunks: list[bytes] = []
        # Keep a reference: ctypes frees the trampoline when the Python object dies.
        self._callback = _SynthCallback(self._on_audio)
        lib.espeak_SetSynthCallback(self._callback)

        self.voices = self._list_voices()
        self.variants = self._list_variants()
        self._statics = find_statics(lib_path)
        self._snapshot = self._read_statics()

    # -- callbacks -------------------------------------------------------------------------------
    def _on_audio(self, wav: Any, n: int, _events: Any) -> int:
        if n > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, n * 2))
        return 0

    # -- static state ----------------------------------------------------------------------------
    def _read_statics(self) -> list[bytes]:
        return [ctypes.string_at(addr, size) for addr, size in self._statics]

    def reset_state(self) -> None:
        for (addr, _size), data in zip(self._statics, self._snapshot, strict=True):
            ctypes.memmove(addr, data, len(data))
        self.lib.espeak_ng_SetRandSeed(_RAND_SEED)
        self.libc.srand(_RAND_SEED)

    # -- listing ---------------------------------------------------------------------------------
    def _list(self, spec: _Voice | None) -> list[_Voice]:
        arr = self.lib.espeak_ListVoices(ctypes.byref(spec) if spec is not None else None)
        out = []
        i = 0
        while arr[i]:
            out.append(arr[i].contents)
            i += 1
        return out

    def _list_voices(self) -> list[dict[str, Any]]:
        out = []
        for v in self._list(None):
            languages = _parse_languages(v.languages)
            out.append(
                {
                    "display_name": v.name.decode("utf-8", "replace").strip(),
                    "identifier": v.identifier.decode("utf-8", "replace"),
                    "languages": [code for _prio, code in languages],
                    "priorities": {code: prio for prio, code in reversed(languages)},
                    "gender": _GENDERS.get(v.gender),
                }
            )
        return out

    def _list_variants(self) -> list[VariantInfo]:
        spec = _Voice()
        spec.languages = ctypes.cast(ctypes.c_char_p(b"variant"), ctypes.c_void_p)
        out = []
        for v in self._list(spec):
            ident = v.identifier.decode("utf-8", "replace")
            out.append(
                VariantInfo(
                    name=ident.split("/", 1)[1],
                    display_name=v.name.decode("utf-8", "replace"),
                    gender=_GENDERS.get(v.gender),
                )
            )
        return out

    # -- synthesis -------------------------------------------------------------------------------
    def select(self, selector: bytes, params: dict[int, int]) -> int:
        err = self.lib.espeak_SetVoiceByName(selector)
        if err != _EE_OK:
            return err
        for key, value in params.items():
            err = self.lib.espeak_SetParameter(key, value, 0)
            if err != _EE_OK:
                return err
        return _EE_OK

    def synth(self, text: str, selector: bytes, params: dict[int, int]) -> np.ndarray:
        try:
            # A NUL would end the C string early; espeak reads the text up to it.
            data = text.replace("\0", " ").encode("utf-8") + b"\0"
        except UnicodeEncodeError as exc:
            raise GenerationError(f"text is not encodable as UTF-8: {exc}") from None
        self.reset_state()
        err = self.select(selector, params)
        if err != _EE_OK:
            raise GenerationError(
                f"espeak could not select voice {selector.decode()!r} (error {err})"
            )
        self._chunks = []
        flags = _CHARS_UTF8 | _ENDPAUSE | (_PHONEME_INPUT if "[[" in text else 0)
        err = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, flags, None, None)
        chunks, self._chunks = self._chunks, []
        if err != _EE_OK:
            raise GenerationError(f"espeak_Synth failed with error code {err}")
        pcm = np.frombuffer(b"".join(chunks), dtype="<i2")
        if pcm.size == 0:
            raise GenerationError("espeak produced no audio")
        return pcm.astype(np.float32) * np.float32(_INT16_SCALE)

    def phonemes(self, text: str, selector: bytes, separator: str) -> str:
        try:
            data = text.replace("\0", " ").encode("utf-8")
        except UnicodeEncodeError as exc:
            raise GenerationError(f"text is not encodable as UTF-8: {exc}") from None
        self.reset_state()
        err = self.lib.espeak_SetVoiceByName(selector)
        if err != _EE_OK:
            raise GenerationError(
                f"espeak could not select voice {selector.decode()!r} (error {err})"
            )
        buf = ctypes.create_string_buffer(data)
        ptr = ctypes.c_void_p(ctypes.addressof(buf))
        # IPA output; bits 8-23 hold the character put between the phonemes of a word.
        mode = _PHONEMES_IPA | (ord(separator) << 8 if separator else 0)
        clauses = []
        # espeak_TextToPhonemes converts one clause per call and advances ptr (NULL at the end).
        while ptr.value:
            out = self.lib.espeak_TextToPhonemes(ctypes.byref(ptr), _CHARS_UTF8, mode)
            if out:
                clauses.append(" ".join(out.decode("utf-8", "replace").split()))
        return " ".join(c for c in clauses if c)


LOCK = threading.RLock()
_ENGINE: Engine | None = None


def engine() -> Engine:
    """The process's engine, loaded and initialized on first use."""
    global _ENGINE
    with LOCK:
        if _ENGINE is None:
            _ENGINE = Engine()
        return _ENGINE
