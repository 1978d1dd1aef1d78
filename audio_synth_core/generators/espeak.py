"""espeak-ng 1.52 in process, through the library that espeakng-loader ships, called with ctypes.

libespeak-ng is one global state machine per process, so the library is loaded and initialized once
(lazily, under a lock) and every call into it holds that lock. Generator objects only carry their
parameters: they pickle cheaply and rebuild nothing when shipped to a Dask worker.

Determinism. espeak-ng keeps state in C statics that no API resets: the pitch-flutter table position
(``Flutter_ix`` in ``AdvanceParameters``), the gain control and cycle counters of ``Wavegen``, the
Klatt resonator and noise memory, the "previous phoneme was a sampled wave" flag of ``DoSpect2``,
and two random generators (``espeak_rand`` for breath noise and Klatt, libc ``rand`` for the
speechPlayer source). Carried into the next utterance they change the pitch track and, because each
phoneme ends on a whole pitch cycle, the length too. Before every utterance we write those statics
back to their values right after initialization (addresses from the library's ELF symbol table),
reseed both generators, and select the voice and every parameter again: each utterance is then
synthesized exactly as the first one of a fresh process would be.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from audio_synth_core.errors import GenerationError, PluginError, UnknownVoiceError
from audio_synth_core.generators.base import Generator, SynthesisRequest, VoiceInfo

# speak_lib.h constants.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000
_POS_CHARACTER = 1
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE, _PARAM_WORDGAP = 1, 2, 3, 4, 7
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


# C statics that carry signal state from one utterance to the next (see the module docstring).
# "name.*" is a static local of a function: the compiler appends a number (``agc.6035``).
_CARRIED_STATICS = frozenset(
    {
        # wavegen.c: pitch flutter, gain control, harmonics, breath-noise filter memory.
        "Flutter_ix.*",
        "agc.*",
        "cycle_count.*",
        "amplitude2.*",
        "h_switch_sign.*",
        "maxh.*",
        "maxh2.*",
        "resume.*",
        "echo_complete.*",
        "modulation_type",
        "glottal_flag",
        "glottal_reduce",
        "wavephase",
        "phaseinc",
        "cycle_samples",
        "hf_factor",
        "samplecount",
        "samplecount_start",
        "nsamples",
        "end_wave",
        "cbytes",
        "hswitch",
        "hspect",
        "harm_inc",
        "peak_harmonic",
        "peak_height",
        "peaks",
        "rbreath",
        "amp_ix",
        "amp_inc",
        # klatt.c: glottal source, noise and resonator memory, frame interpolation.
        "kt_globals",
        "kt_frame",
        "klattp",
        "klattp1",
        "klattp_inc",
        "sample_count",
        "prev_fr.*",
        "noise.*",
        "nlast.*",
        "glotlast.*",
        "vwave.*",
        "vlast.*",
        "voice.*",
        "skew.*",
        "time_count.*",
        # synthesize.c: "the previous phoneme was a sampled wave" changes the next command.
        "wave_flag.*",
    }
)


def _carried(symbol: str) -> bool:
    stem, dot, suffix = symbol.partition(".")
    if dot:
        return suffix.isdigit() and f"{stem}.*" in _CARRIED_STATICS
    return symbol in _CARRIED_STATICS


class _Engine:
    """The process-wide libespeak-ng handle. Only ever used under ``_LOCK``."""

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
        self._statics = self._find_statics(lib_path)
        self._snapshot = self._read_statics()

    # -- callbacks -------------------------------------------------------------------------------
    def _on_audio(self, wav: Any, n: int, _events: Any) -> int:
        if n > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, n * 2))
        return 0

    # -- static state ----------------------------------------------------------------------------
    def _find_statics(self, lib_path: str) -> list[tuple[int, int]]:
        """(address, size) of every carried static, from the ELF symbol table of the library."""
        symbols = _elf_data_symbols(lib_path)
        base = _load_base(lib_path)
        found = [(name, base + offset, size) for name, offset, size in symbols if _carried(name)]
        # Every entry must exist, or this build differs from the one the list was made for.
        missing = {
            entry
            for entry in _CARRIED_STATICS
            if not any(
                _carried(name) and name.split(".")[0] == entry.split(".")[0] for name, *_ in found
            )
        }
        if missing:
            raise PluginError(f"libespeak-ng at {lib_path} lacks statics {sorted(missing)}")
        return [(addr, size) for _name, addr, size in found]

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
        err = self.lib.espeak_Synth(
            data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _ENDPAUSE, None, None
        )
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


def _elf_data_symbols(path: str) -> list[tuple[str, int, int]]:
    """(name, value, size) of the data objects in an ELF64 file's .symtab, static ones included.

    The dynamic symbol table lists only exported functions; the statics we reset are in .symtab,
    which this (unstripped) build keeps. Parsed with the stdlib: no pyelftools dependency."""
    import struct

    with open(path, "rb") as fh:
        blob = fh.read()
    if blob[:4] != b"\x7fELF" or blob[4] != 2 or blob[5] != 1:
        raise PluginError(f"{path} is not a little-endian ELF64 library")
    shoff = struct.unpack_from("<Q", blob, 0x28)[0]
    shentsize, shnum = struct.unpack_from("<HH", blob, 0x3A)
    sections = [
        struct.unpack_from("<IIQQQQIIQQ", blob, shoff + i * shentsize) for i in range(shnum)
    ]
    out: list[tuple[str, int, int]] = []
    for _name, sh_type, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
        if sh_type != 2:  # SHT_SYMTAB
            continue
        strtab = sections[link]
        str_off = strtab[4]
        for pos in range(offset, offset + size, entsize):
            st_name, st_info, _other, _shndx, value, st_size = struct.unpack_from(
                "<IBBHQQ", blob, pos
            )
            if st_info & 0xF != 1:  # STT_OBJECT
                continue
            end = blob.index(b"\0", str_off + st_name)
            name = blob[str_off + st_name : end].decode("ascii", "replace")
            out.append((name, value, st_size))
    return out


def _load_base(lib_path: str) -> int:
    """Load address of the library: start of its first mapping (file offset 0) in this process."""
    real = os.path.realpath(lib_path)
    with open("/proc/self/maps") as fh:
        for line in fh:
            fields = line.split()
            if len(fields) >= 6 and os.path.realpath(fields[5]) == real and fields[2] == "00000000":
                return int(fields[0].split("-")[0], 16)
    raise PluginError(f"cannot find {real} in /proc/self/maps")


_LOCK = threading.RLock()
_ENGINE: _Engine | None = None


def _engine() -> _Engine:
    global _ENGINE
    with _LOCK:
        if _ENGINE is None:
            _ENGINE = _Engine()
        return _ENGINE


_RANGES = {
    "rate_wpm": (80, 450),
    "pitch": (0, 99),
    "pitch_range": (0, 99),
    "volume": (0, 200),
    "word_gap_10ms": (0, 100),
}
_DEFAULTS = {"rate_wpm": 175, "pitch": 50, "pitch_range": 50, "volume": 100, "word_gap_10ms": 0}
_PARAM_IDS = {
    "rate_wpm": _PARAM_RATE,
    "pitch": _PARAM_PITCH,
    "pitch_range": _PARAM_RANGE,
    "volume": _PARAM_VOLUME,
    "word_gap_10ms": _PARAM_WORDGAP,
}


@dataclass(frozen=True)
class _Catalog:
    """Voice names and aliases, built once from the engine's lists."""

    voices: tuple[VoiceInfo, ...]
    by_alias: dict[str, VoiceInfo]
    by_language: dict[str, VoiceInfo]
    variants: dict[str, VariantInfo]  # lower-cased name -> variant


def _build_catalog(engine: _Engine) -> _Catalog:
    voices: list[VoiceInfo] = []
    taken: set[str] = set()
    for v in engine.voices:
        ident = v["identifier"]
        base = ident.rsplit("/", 1)[-1].lower()
        name = v["languages"][0] if v["languages"] else base
        if name in taken:
            # Two voices share a first language (yue, yue-Latn-jyutping): use the file name.
            name = base
        taken.add(name)
        voices.append(
            VoiceInfo(
                name=name,
                language=v["languages"][0] if v["languages"] else name,
                gender=v["gender"],
                attributes={
                    "identifier": ident,
                    "display_name": v["display_name"],
                    "languages": ",".join(v["languages"]),
                },
            )
        )
    by_alias: dict[str, VoiceInfo] = {}
    for info in voices:
        ident = info.attributes["identifier"]
        for alias in (info.name, ident, ident.rsplit("/", 1)[-1], info.attributes["display_name"]):
            by_alias.setdefault(alias.lower(), info)
    # A language goes to the voice that lists it with the best (lowest) priority, as espeak does;
    # the listing order is already espeak's, so the first wins ties.
    by_language: dict[str, VoiceInfo] = {}
    ranked = []
    for order, (info, raw) in enumerate(zip(voices, engine.voices, strict=True)):
        for lang in raw["languages"]:
            ranked.append((lang, raw["priorities"][lang], order, info))
    for lang, _prio, _order, info in sorted(ranked, key=lambda r: (r[0], r[1], r[2])):
        by_language.setdefault(lang, info)
    variants = {v.name.lower(): v for v in engine.variants}
    return _Catalog(tuple(voices), by_alias, by_language, variants)


_CATALOG: _Catalog | None = None


def _catalog() -> _Catalog:
    global _CATALOG
    with _LOCK:
        if _CATALOG is None:
            _CATALOG = _build_catalog(_engine())
        return _CATALOG


def _language_candidates(language: str) -> list[str]:
    """``de_DE.UTF-8`` -> ["de-de", "de"]: the exact tag first, then ever shorter prefixes."""
    tag = language.split(".", 1)[0].replace("_", "-").strip().lower()
    parts = tag.split("-")
    return ["-".join(parts[:n]) for n in range(len(parts), 0, -1) if parts[0]]


def _check_param(key: str, value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"espeak parameter {key!r} must be an integer, got {value!r}")
    low, high = _RANGES[key]
    if not low <= value <= high:
        raise ValueError(f"espeak parameter {key!r}={value} is outside {low}..{high}")
    return value


class EspeakGenerator(Generator):
    """espeak-ng formant synthesis: 141 voices x 104 variants, deterministic, ~1000x real time.

    Voice names are espeak language tags (``en-us``, ``en-gb``, ``de``, ``fr-fr``); aliases such as
    the voice file (``en``, ``gmw/en-US``) or display name also resolve. ``<voice>+<variant>``
    (``en-us+f3``, ``de+m7``) applies a variant from ``variants()``.

    Parameters: ``rate_wpm`` 80..450 (175), ``pitch`` 0..99 (50), ``pitch_range`` 0..99 (50),
    ``volume`` 0..200 (100), ``word_gap_10ms`` 0..100 (0). ``SynthesisRequest.seed`` is unused:
    the output depends only on text, voice and parameters.
    """

    name: ClassVar[str] = "espeak"

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(_DEFAULTS))
        if unknown:
            known = ", ".join(sorted(_DEFAULTS))
            raise TypeError(f"unknown espeak parameter(s) {', '.join(unknown)}; known: {known}")
        merged = {
            key: _check_param(key, params.get(key, default)) for key, default in _DEFAULTS.items()
        }
        super().__init__(**merged)
        self._settings = {_PARAM_IDS[key]: value for key, value in merged.items()}

    @property
    def version(self) -> str:
        return _engine().version

    @property
    def sample_rate_hz(self) -> int:
        return _engine().sample_rate_hz

    def voices(self) -> list[VoiceInfo]:
        """The 141 base voices; combine any of them with a variant as ``<voice>+<variant>``."""
        return list(_catalog().voices)

    def variants(self) -> list[VariantInfo]:
        """The voice variants (m1-m8, f1-f5, klatt, whisper, ...) with their gender."""
        return list(_engine().variants)

    def resolve_voice(self, voice: str | None, language: str | None) -> VoiceInfo:
        return self._resolve(voice, language)[0]

    def _resolve(self, voice: str | None, language: str | None) -> tuple[VoiceInfo, bytes]:
        """The voice and the selector for espeak_SetVoiceByName (``<file>[+<variant file>]``)."""
        catalog = _catalog()
        if voice:
            base_name, _, variant_name = voice.strip().partition("+")
            base = catalog.by_alias.get(base_name.strip().lower()) or catalog.by_language.get(
                base_name.strip().lower()
            )
            if base is None:
                raise UnknownVoiceError(f"unknown voice {voice!r} for generator 'espeak'")
        elif language:
            base = next(
                (
                    catalog.by_language[tag]
                    for tag in _language_candidates(language)
                    if tag in catalog.by_language
                ),
                None,
            )
            if base is None:
                raise UnknownVoiceError(f"no voice for language {language!r} in generator 'espeak'")
            variant_name = ""
        else:
            raise UnknownVoiceError("neither a voice nor a language was given")
        selector = base.attributes["identifier"]
        if not variant_name:
            return base, selector.encode()
        variant = catalog.variants.get(variant_name.strip().lower())
        if variant is None:
            # espeak silently ignores a variant it cannot load: refuse it here instead.
            raise UnknownVoiceError(f"unknown voice variant {variant_name!r} in voice {voice!r}")
        info = VoiceInfo(
            name=f"{base.name}+{variant.name}",
            language=base.language,
            gender=variant.gender,
            attributes={**base.attributes, "variant": variant.name, "base_voice": base.name},
        )
        return info, f"{selector}+{variant.name}".encode()

    def generate(self, requests: Sequence[SynthesisRequest]) -> list[np.ndarray | Exception]:
        engine = _engine()
        out: list[np.ndarray | Exception] = []
        for request in requests:
            try:
                if not request.text or not request.text.strip():
                    raise GenerationError("empty text")
                _info, selector = self._resolve(request.voice, request.language)
                with _LOCK:
                    out.append(engine.synth(request.text, selector, self._settings))
            except (GenerationError, UnknownVoiceError) as exc:
                out.append(exc)
        return out

    def phonemes(self, text: str, voice: str = "en-us", *, separator: str = "") -> str:
        """IPA for ``text`` as espeak would speak it: words separated by spaces, the phonemes
        inside a word joined by ``separator`` (one character or empty). Deterministic."""
        if len(separator) > 1:
            raise ValueError(f"separator must be one character or empty, got {separator!r}")
        _info, selector = self._resolve(voice, None)
        engine = _engine()
        with _LOCK:
            return engine.phonemes(text, selector, separator)
