"""Vocoder learning curve: train with checkpoints, then score copy synthesis at every checkpoint.

The experiment behind the tiny vocoder's design. Trains ``train_vocoder`` on a one-voice espeak
corpus with ``--hparams`` (JSON of ``VocoderHParams`` fields, ``model_overrides`` included), saves a
checkpoint every ``--every`` steps, and prints for each checkpoint (and Griffin-Lim) the copy-synthesis
distances on held-out clips, plus STOI per one-third-octave band with ``--bands`` (where a vocoder
loses intelligibility: low bands are the harmonics of F0).

    .venv/bin/python -m benchmarks.vocoder_curve --steps 4000 --every 1000 --bands \\
        --hparams '{"adversarial_start_step": 99999}'
"""

from __future__ import annotations

import argparse
import json
import tempfile

import numpy as np
import torch

from audio_synth_core.models.features import GriffinLimVocoder, MelConfig, log_mel
from audio_synth_core.models.metrics import copy_synthesis_metrics
from audio_synth_core.models.training.checkpoints import CheckpointStore
from audio_synth_core.models.training.vocoder import VocoderHParams, train_vocoder
from audio_synth_core.models.vocoder import HiFiGAN, VocoderConfig
from benchmarks.models import corpus_texts, espeak_corpus


def stoi_bands(reference: np.ndarray, test: np.ndarray, rate: int) -> np.ndarray:
    """STOI's intermediate correlation per one-third-octave band (pystoi's own steps)."""
    from pystoi import utils
    from pystoi.stoi import BETA, DYN_RANGE, FS, N_FRAME, NFFT, OBM, N
    from scipy.signal import resample_poly

    x = resample_poly(reference.astype(np.float64), FS, rate)
    y = resample_poly(test.astype(np.float64), FS, rate)
    x, y = utils.remove_silent_frames(x, y, DYN_RANGE, N_FRAME, N_FRAME // 2)
    bands = []
    for s in (x, y):
        spec = utils.stft(s, N_FRAME, NFFT, overlap=2).transpose()
        bands.append(np.sqrt(OBM @ np.square(np.abs(spec))))
    xt, yt = bands
    xs = np.array([xt[:, m - N : m] for m in range(N, xt.shape[1] + 1)])
    ys = np.array([yt[:, m - N : m] for m in range(N, xt.shape[1] + 1)])
    norm = np.linalg.norm(xs, axis=2, keepdims=True) / (
        np.linalg.norm(ys, axis=2, keepdims=True) + 1e-12
    )
    ys = np.minimum(ys * norm, xs * (1 + 10 ** (-BETA / 20)))
    xm, ym = xs - xs.mean(2, keepdims=True), ys - ys.mean(2, keepdims=True)
    corr = (xm * ym).sum(2) / (np.linalg.norm(xm, axis=2) * np.linalg.norm(ym, axis=2) + 1e-12)
    return corr.mean(0)


def evaluate(vocoder, clips, mel_config: MelConfig, bands: bool) -> dict:
    rows, per_band = [], []
    rate = mel_config.sample_rate_hz
    for audio in clips:
        mel = log_mel(audio, mel_config).unsqueeze(0)
        with torch.no_grad():
            out = vocoder(mel)[0].numpy()
        rows.append(copy_synthesis_metrics(audio, out, rate, mel_config))
        if bands:
            per_band.append(stoi_bands(audio, out, rate))
    result = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]}
    if bands:
        result["stoi_bands"] = [round(float(v), 3) for v in np.mean(per_band, 0)]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--every", type=int, default=1000, help="checkpoint interval")
    parser.add_argument("--hparams", default="{}", help="JSON of VocoderHParams fields")
    parser.add_argument("--utterances", type=int, default=200)
    parser.add_argument("--held-out", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bands", action="store_true", help="STOI per one-third-octave band")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    mel_config = MelConfig()
    hop = mel_config.hop_length
    corpus = espeak_corpus(corpus_texts(args.utterances + args.held_out), "en-us")
    train, test = corpus[: args.utterances], corpus[args.utterances :]
    clips = [a[: len(a) // hop * hop] for _, a, _ in test]
    print("griffinlim", evaluate(GriffinLimVocoder(mel_config), clips, mel_config, args.bands))
    hp = VocoderHParams(
        steps=args.steps,
        checkpoint_every=args.every,
        keep_checkpoints=args.steps // args.every + 1,
        log_every=max(1, args.every // 4),
        **json.loads(args.hparams),
    )
    with tempfile.TemporaryDirectory(prefix="audio-synth-vocoder-curve-") as tmp:
        result = train_vocoder(
            train,
            hp,
            torch.Generator().manual_seed(0),
            checkpoint_url=tmp,
            device="cpu",
            on_log=lambda step, m: print(
                f"  step {step}: " + ", ".join(f"{k} {v:.3f}" for k, v in m.items()), flush=True
            ),
        )
        print(f"trained {result.step} steps in {result.train_seconds:.0f} s")
        store = CheckpointStore(tmp, hp.keep_checkpoints)
        for step in store.steps():
            state = store.load(step)
            model = HiFiGAN(VocoderConfig.from_dict(state["config"]))
            model.load_state_dict(state["model"])
            print(f"step {step}", evaluate(model.eval(), clips, mel_config, args.bands), flush=True)


if __name__ == "__main__":
    main()
