"""The vocoder's discriminators and GAN losses (``models.discriminators``)."""

from __future__ import annotations

import torch

from audio_synth_core.models.discriminators import (
    Discriminators,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from audio_synth_core.models.vocoder import VocoderConfig

from .conftest import TINY_VOCODER


def test_one_score_and_feature_stack_per_period_and_scale() -> None:
    config = VocoderConfig.sized("tiny", **TINY_VOCODER)
    torch.manual_seed(0)
    scores, feats = Discriminators(config)(torch.randn(2, 1000))
    assert len(scores) == len(feats) == len(config.periods) + config.scales
    assert all(s.shape[0] == 2 and torch.isfinite(s).all() for s in scores)


def test_least_squares_losses_vanish_at_their_targets() -> None:
    ones, zeros = [torch.ones(2, 3)], [torch.zeros(2, 3)]
    assert discriminator_loss(ones, zeros).item() == 0.0
    assert discriminator_loss(zeros, ones).item() == 2.0
    assert generator_adversarial_loss(ones).item() == 0.0
    feats = [[torch.randn(2, 4)]]
    assert feature_matching_loss(feats, feats).item() == 0.0
