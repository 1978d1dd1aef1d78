"""Both training loops resume from their newest checkpoint and reach the uninterrupted result."""

from __future__ import annotations

import os

import pytest
import torch

from audio_synth_core.models.frontend import Frontend
from audio_synth_core.models.training.acoustic import AcousticHParams, train_acoustic
from audio_synth_core.models.training.checkpoints import CheckpointStore
from audio_synth_core.models.training.vocoder import VocoderHParams, train_vocoder

from ..conftest import TINY_ACOUSTIC, TINY_VOCODER


class Interrupted(Exception):
    """Raised from a log hook: the run stops there as if the process were killed."""


def _stop_at(step_to_stop: int):
    def hook(step: int, metrics: dict[str, float]) -> None:
        if step == step_to_stop:
            raise Interrupted

    return hook


def _assert_same_parameters(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


@pytest.mark.parametrize("decoder", ["vae", "diffusion"])
def test_acoustic_resume_reaches_the_uninterrupted_result(corpus, decoder: str) -> None:
    # memory:// goes through the remote (single put) branch of the checkpoint store.
    hp = AcousticHParams(
        decoder=decoder,
        steps=6,
        batch_size=3,  # 4 utterances: epochs straddle batches, so the data order state matters
        checkpoint_every=2,
        log_every=1,
        model_overrides=TINY_ACOUSTIC,
    )
    frontend = Frontend("espeak", "en-us")
    whole = train_acoustic(
        corpus, hp, torch.Generator().manual_seed(7), frontend=frontend, device="cpu"
    )
    url = f"memory://resume-{decoder}"
    with pytest.raises(Interrupted):
        train_acoustic(
            corpus,
            hp,
            torch.Generator().manual_seed(7),
            url,
            on_log=_stop_at(5),
            frontend=frontend,
            device="cpu",
        )
    assert CheckpointStore(url).steps() == [2, 4]
    resumed = train_acoustic(
        corpus, hp, torch.Generator().manual_seed(7), url, frontend=frontend, device="cpu"
    )
    assert resumed.step == 6
    _assert_same_parameters(whole.model, resumed.model)
    # A finished run is not trained further.
    again = train_acoustic(corpus, hp, torch.Generator().manual_seed(7), url, frontend=frontend)
    _assert_same_parameters(whole.model, again.model)
    assert again.step == 6 and again.metrics["loss"] == whole.metrics["loss"]


def test_vocoder_resume_reaches_the_uninterrupted_result(corpus, tmp_path) -> None:
    hp = VocoderHParams(
        steps=5,
        batch_size=2,
        segment_frames=8,
        adversarial_start_step=2,
        checkpoint_every=3,
        log_every=1,
        model_overrides=TINY_VOCODER,
    )
    whole = train_vocoder(corpus, hp, torch.Generator().manual_seed(1), device="cpu")
    url = str(tmp_path / "vocoder")
    with pytest.raises(Interrupted):
        train_vocoder(
            corpus, hp, torch.Generator().manual_seed(1), url, on_log=_stop_at(4), device="cpu"
        )
    resumed = train_vocoder(corpus, hp, torch.Generator().manual_seed(1), url, device="cpu")
    _assert_same_parameters(whole.model, resumed.model)
    assert not [n for n in os.listdir(url) if ".tmp" in n]
