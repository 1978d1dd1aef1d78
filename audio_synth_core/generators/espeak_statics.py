"""The C statics of libespeak-ng that carry signal state from one utterance to the next, and where
they are in this process (``find_statics``), so the engine can write them back before each one.

espeak-ng keeps state in C statics that no API resets: the pitch-flutter table position
(``Flutter_ix`` in ``AdvanceParameters``), the gain control and cycle counters of ``Wavegen``, the
Klatt resonator and noise memory, the "previous phoneme was a sampled wave" flag of ``DoSpect2``,
and two random generators (``espeak_rand`` for breath noise and Klatt, libc ``rand`` for the
speechPlayer source). Carried into the next utterance they change the pitch track and, because each
phoneme ends on a whole pitch cycle, the length too. Their addresses come from the library's ELF
symbol table (``.symtab``, which this unstripped build keeps) plus its load address.
"""

from __future__ import annotations

import os

from audio_synth_core.errors import PluginError

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


def find_statics(lib_path: str) -> list[tuple[int, int]]:
    """(address, size) of every carried static of the loaded library, from its ELF symbol table."""
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
