"""Watermark benchmark: robustness per edit, payload bit errors, imperceptibility and speed.

Marks N espeak-ng clips (several voices and languages, two sentences each) and keeps N unmarked
ones; the detection threshold is the shipped one (THRESHOLD_Z) unless unmarked clips need a
higher one for at most 0.1 % false positives. Every marked clip then goes through each edit and
is detected again. Run from the repository root:

    .venv/bin/python -m benchmarks.watermark [--clips 500] [--workers 2] [--quick]

Numbers are printed, not asserted: the tests assert the properties, this reports their size.
"""

from __future__ import annotations

import os

# One BLAS/FFT thread per process: speed is reported per core.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.signal import butter, sosfilt  # noqa: E402

from audio_synth_core.audio import resample  # noqa: E402
from audio_synth_core.watermark import (  # noqa: E402
    THRESHOLD_Z,
    WatermarkKey,
    WatermarkSettings,
    detect,
    mark,
)

KEY = WatermarkKey(bytes.fromhex("5a" * 16 + "c3" * 16))
TEXTS = {
    "en": (
        "The birch canoe slid on the smooth planks.",
        "Glue the sheet to the dark blue background.",
        "It's easy to tell the depth of a well.",
        "These days a chicken leg is a rare dish.",
        "Rice is often served in round bowls.",
        "The juice of lemons makes fine punch.",
        "The box was thrown beside the parked truck.",
        "Four hours of steady work faced us.",
        "A large size in stockings is hard to sell.",
        "The boy was there when the sun rose.",
        "Please keep the receipt for your warranty.",
        "Our store opens at nine in the morning every day.",
    ),
    "de": (
        "Diese Lampe ist leise und sparsam.",
        "Der Zug nach Hamburg fährt um acht Uhr ab.",
        "Bitte schließen Sie das Fenster am Abend.",
        "Im Garten blühen die ersten Rosen.",
        "Das Paket wird morgen früh geliefert.",
        "Wir treffen uns nach der Arbeit im Café.",
    ),
    "fr": (
        "Cette veste résiste à la pluie.",
        "Le marché ouvre tous les samedis matin.",
        "Il fait beau aujourd'hui sur la côte.",
        "Nous avons reçu votre commande hier soir.",
        "La bibliothèque ferme à dix-huit heures.",
        "Le chat dort près de la cheminée.",
    ),
    "es": (
        "La tienda abre a las nueve de la mañana.",
        "El tren sale del andén número tres.",
        "Por favor, guarde el recibo de compra.",
        "Mañana lloverá en toda la región.",
        "El café está listo en la cocina.",
        "Los niños juegan en el parque.",
    ),
}
VOICES = {
    "en": ("en-us", "en-us+f3", "en-gb", "en-us+m7"),
    "de": ("de", "de+f2"),
    "fr": ("fr-fr", "fr-fr+f4"),
    "es": ("es", "es+m3"),
}
ACX = "acx chain"
SPEED = "speed +10 %"


def _clip_spec(i: int) -> tuple[str, str, str]:
    """Deterministic (language, voice, text) of clip ``i``: two sentences of one language."""
    langs = list(TEXTS)
    lang = langs[i % len(langs)] if i % 2 else "en"  # half English, half the others
    texts, voices = TEXTS[lang], VOICES[lang]
    j = i // 2
    text = f"{texts[j % len(texts)]} {texts[(j * 7 + 3) % len(texts)]}"
    return lang, voices[(j // len(texts)) % len(voices)], text


def _codec(samples: np.ndarray, rate: int, fmt: str, codec: str, kbps: int) -> np.ndarray:
    """Encode and decode again with FFmpeg (PyAV): what a lossy delivery does to the audio."""
    import av

    pcm = np.round(np.clip(samples, -1, 1) * 32767).astype(np.int16)
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        stream.bit_rate = kbps * 1000
        frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in (*stream.encode(frame), *stream.encode(None)):
            out.mux(packet)
    buf.seek(0)
    chunks = []
    with av.open(buf) as src:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        for frame in src.decode(audio=0):
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
    return np.concatenate(chunks).astype(np.float32)


def _noise(samples: np.ndarray, snr_db: float, rng: np.random.Generator, pink: bool) -> np.ndarray:
    noise = rng.standard_normal(len(samples))
    if pink:  # 1/f power: shape white noise's spectrum by 1/sqrt(f)
        spec = np.fft.rfft(noise)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        noise = np.fft.irfft(spec / np.sqrt(f), n=len(samples))
    p_signal = float(np.mean(samples.astype(np.float64) ** 2))
    noise *= np.sqrt(p_signal / 10 ** (snr_db / 10) / np.mean(noise**2))
    return (samples + noise).astype(np.float32)


def _filter(samples: np.ndarray, rate: int, hz: float, kind: str) -> np.ndarray:
    return sosfilt(butter(8, hz, kind, fs=rate, output="sos"), samples).astype(np.float32)


def _crop(samples: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    n = 3 * rate
    start = int(rng.integers(0, max(1, len(samples) - n + 1)))
    return samples[start : start + n]


def _acx(samples: np.ndarray, rate: int) -> tuple[np.ndarray, int]:
    from audio_synth_core.mastering.chain import master_array

    return master_array(samples, rate)


Edit = Callable[[np.ndarray, int, np.random.Generator], tuple[np.ndarray, int]]
EDITS: dict[str, Edit] = {
    "none": lambda x, r, g: (x, r),
    "resample 16 kHz": lambda x, r, g: (resample(x, r, 16000), 16000),
    "resample 44.1 kHz": lambda x, r, g: (resample(x, r, 44100), 44100),
    "mp3 192 kbps": lambda x, r, g: (_codec(x, r, "mp3", "libmp3lame", 192), r),
    "mp3 128 kbps": lambda x, r, g: (_codec(x, r, "mp3", "libmp3lame", 128), r),
    "mp3 64 kbps": lambda x, r, g: (_codec(x, r, "mp3", "libmp3lame", 64), r),
    "aac 128 kbps": lambda x, r, g: (_codec(x, r, "adts", "aac", 128), r),
    "white noise 30 dB": lambda x, r, g: (_noise(x, 30, g, False), r),
    "white noise 20 dB": lambda x, r, g: (_noise(x, 20, g, False), r),
    "pink noise 20 dB": lambda x, r, g: (_noise(x, 20, g, True), r),
    "low-pass 4 kHz": lambda x, r, g: (_filter(x, r, 4000, "lowpass"), r),
    "high-pass 500 Hz": lambda x, r, g: (_filter(x, r, 500, "highpass"), r),
    "gain -10 dB": lambda x, r, g: ((x * 10 ** (-10 / 20)).astype(np.float32), r),
    "gain +6 dB, clipped": lambda x, r, g: (np.clip(x * 10 ** (6 / 20), -1, 1), r),
    SPEED: lambda x, r, g: (resample(x, r, round(r / 1.1)), r),  # tape speed: tempo and pitch
    "crop 3 s": lambda x, r, g: (_crop(x, r, g), r),
    ACX: lambda x, r, g: _acx(x, r),
}
QUICK_EDITS = ("none", "resample 16 kHz", "mp3 128 kbps", "white noise 20 dB", "crop 3 s", ACX)
# Edits held to 0.98 by the targets; every other one (but speed, reported only) to 0.90.
STRICT = ("none", "resample 16 kHz", "resample 44.1 kHz", "mp3 192 kbps", "mp3 128 kbps", ACX)


def _work(args: tuple[list[int], list[str]]) -> list[dict]:
    """Synthesize, mark, edit and detect clips ``indices`` (one worker process)."""
    from pesq import pesq

    from audio_synth_core.generators.base import SynthesisRequest
    from audio_synth_core.generators.espeak import EspeakGenerator

    indices, edits = args
    gen = EspeakGenerator()
    settings = WatermarkSettings(KEY)
    rows = []
    for i in indices:
        lang, voice, text = _clip_spec(i)
        (clean,) = gen.generate([SynthesisRequest(text=text, voice=voice, language=lang)])
        rate = gen.sample_rate_hz
        rng = np.random.default_rng(i)
        item = f"clip-{i:06d}"
        base = {"clip": i, "language": lang, "voice": voice, "audio_s": len(clean) / rate}
        # The unmarked twin: same text and voice, never marked.
        t0 = time.perf_counter()
        found = detect(clean, rate, KEY, np.inf)
        rows.append(base | {"marked": False, "edit": "none", "z": found.z})
        t1 = time.perf_counter()
        marked, value = mark(clean, rate, settings, item)
        t2 = time.perf_counter()
        quality = {
            "snr_db": float(
                10 * np.log10(np.sum(clean**2) / max(np.sum((marked - clean) ** 2), 1e-30))
            ),
            "pesq": float(
                pesq(16000, resample(clean, rate, 16000), resample(marked, rate, 16000), "wb")
            ),
            "embed_s": t2 - t1,
            "detect_s": t1 - t0,
        }
        for name in edits:
            edited, edited_rate = EDITS[name](marked, rate, rng)
            found = detect(edited, edited_rate, KEY, -np.inf)  # decode always; threshold later
            errors = bin(found.payload ^ value).count("1") if found.payload is not None else None
            row = base | {
                "marked": True,
                "edit": name,
                "z": found.z,
                "bit_errors": errors,
                "payload_read": found.payload is not None,
            }
            rows.append(row | (quality if name == "none" else {}))
    return rows


def run(n_clips: int, workers: int, edits: list[str]) -> pd.DataFrame:
    n_chunks = max(1, min(n_clips, workers * 8))
    chunks = [list(range(w, n_clips, n_chunks)) for w in range(n_chunks)]
    rows: list[dict] = []
    with ProcessPoolExecutor(workers) as pool:
        futures = [pool.submit(_work, (c, edits)) for c in chunks if c]
        for done, future in enumerate(as_completed(futures), 1):
            rows.extend(future.result())
            print(f"  {done}/{len(futures)} chunks done", file=sys.stderr, flush=True)
    return pd.DataFrame(rows)


def report(df: pd.DataFrame, edits: list[str]) -> dict:
    unmarked = df[~df["marked"]]["z"].to_numpy()
    # At most 0.1 % of unmarked clips may pass: the shipped threshold, or higher if they need it.
    allowed = int(np.floor(0.001 * len(unmarked)))
    above = np.sort(unmarked)[::-1]
    needed = float(above[allowed]) + 1e-6 if len(above) > allowed else -np.inf
    threshold = max(THRESHOLD_Z, needed)
    marked = df[df["marked"]]
    table = []
    for name in edits:
        sub = marked[marked["edit"] == name]
        hit = sub[sub["z"] >= threshold]
        bits = hit["bit_errors"].dropna()
        target = "reported" if name == SPEED else (0.98 if name in STRICT else 0.90)
        table.append(
            {
                "edit": name,
                "detected": len(hit) / len(sub),
                "target": target,
                "ber": float(bits.sum() / (32 * len(bits))) if len(bits) else None,
                "payload_read": float(hit["payload_read"].mean()) if len(hit) else None,
                "z_median": float(sub["z"].median()),
            }
        )
    clean = marked[marked["edit"] == "none"]
    audio_s = clean["audio_s"].sum()
    return {
        "clips_marked": len(clean),
        "clips_unmarked": len(unmarked),
        "threshold_z": threshold,
        "false_positive_rate": float(np.mean(unmarked >= threshold)),
        "unmarked_z_max": float(unmarked.max()),
        "pesq_mean": float(clean["pesq"].mean()),
        "pesq_min": float(clean["pesq"].min()),
        "snr_db_mean": float(clean["snr_db"].mean()),
        "snr_db_min": float(clean["snr_db"].min()),
        "embed_x_realtime": float(audio_s / clean["embed_s"].sum()),
        "detect_x_realtime": float(audio_s / clean["detect_s"].sum()),
        "embed_detect_x_realtime": float(audio_s / (clean["embed_s"] + clean["detect_s"]).sum()),
        "audio_s_mean": float(clean["audio_s"].mean()),
        "table": table,
    }


def print_report(r: dict) -> None:
    print(
        f"{r['clips_marked']} marked + {r['clips_unmarked']} unmarked clips "
        f"(mean {r['audio_s_mean']:.1f} s); threshold z {r['threshold_z']:.2f}: "
        f"false positives {r['false_positive_rate']:.3%} (unmarked max z {r['unmarked_z_max']:.2f})"
    )
    print(
        f"PESQ wb mean {r['pesq_mean']:.2f} min {r['pesq_min']:.2f}; SNR mean "
        f"{r['snr_db_mean']:.1f} dB min {r['snr_db_min']:.1f} dB; per core: embed "
        f"{r['embed_x_realtime']:.0f}x, detect {r['detect_x_realtime']:.0f}x, both "
        f"{r['embed_detect_x_realtime']:.0f}x real time"
    )
    print("| edit | detected | target | payload read (detected) | payload BER (read) | median z |")
    print("| --- | --- | --- | --- | --- | --- |")
    for t in r["table"]:
        ber = "-" if t["ber"] is None else f"{t['ber']:.2%}"
        read = "-" if t["payload_read"] is None else f"{t['payload_read']:.3f}"
        target = t["target"] if isinstance(t["target"], str) else f">= {t['target']:.2f}"
        print(
            f"| {t['edit']} | {t['detected']:.3f} | {target} | {read} | {ber} "
            f"| {t['z_median']:.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--clips", type=int, default=500, help="marked clips (and as many unmarked)"
    )
    parser.add_argument("--workers", type=int, default=2, help="processes")
    parser.add_argument("--quick", action="store_true", help="50 clips, six edits")
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args()
    n = 50 if args.quick else args.clips
    edits = list(QUICK_EDITS if args.quick else EDITS)
    start = time.perf_counter()
    result = report(run(n, args.workers, edits), edits)
    result["wall_s"] = time.perf_counter() - start
    print_report(result)
    print(f"({result['wall_s']:.0f} s wall, {args.workers} processes)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
