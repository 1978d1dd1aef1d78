"""The payload: 32 bits from an item id, through the convolutional code and back."""

from __future__ import annotations

import numpy as np
import pytest

from audio_synth_core.watermark import payload as codec


def test_payload_of_is_a_stable_32_bit_digest_of_the_id():
    a = codec.payload_of("0123456789abcdef0123")
    assert a == codec.payload_of("0123456789abcdef0123")
    assert a != codec.payload_of("0123456789abcdef0124")
    assert 0 <= a < 2**32


@pytest.mark.parametrize("value", [0, 1, 0xDEADBEEF, 2**32 - 1])
def test_bits_round_trip(value):
    bits = codec.to_bits(value)
    assert len(bits) == codec.PAYLOAD_BITS
    assert codec.from_bits(bits) == value


def test_a_payload_over_32_bits_is_refused():
    with pytest.raises(ValueError, match="32 bits"):
        codec.to_bits(2**32)


def test_clean_code_decodes_exactly():
    coded = codec.encode(0xCAFEBABE)
    assert len(coded) == codec.CODED_BITS == 114
    assert codec.decode(2.0 * coded - 1.0) == 0xCAFEBABE


def test_the_code_corrects_noisy_and_missing_soft_bits():
    rng = np.random.default_rng(7)
    errors = 0
    for _ in range(50):
        value = int(rng.integers(0, 2**32))
        soft = 2.0 * codec.encode(value) - 1.0
        raw = soft + rng.standard_normal(len(soft)) * 0.8  # ~11 % of the raw bits flipped
        raw[rng.choice(len(raw), 15, replace=False)] = 0.0  # and some never received
        assert np.mean(np.sign(raw) != np.sign(soft)) > 0.05
        errors += bin(codec.decode(raw) ^ value).count("1")
    assert errors / (50 * 32) < 0.01


def test_a_clean_codeword_is_ahead_of_every_other_payload_by_the_free_distance():
    value = 0xCAFEBABE
    decoded, margin = codec.decode_margin(2.0 * codec.encode(value) - 1.0)
    # The K=7 rate-1/3 code's free distance is 15 coded bits; each costs two units of metric.
    assert decoded == value and margin == pytest.approx(30.0)


def test_erased_bits_that_cannot_tell_two_payloads_apart_give_no_certain_payload():
    value = 0xCAFEBABE
    soft = 2.0 * codec.encode(value) - 1.0
    soft[-24:] = 0.0  # the last 8 trellis steps never received: the last payload bits are open
    _, margin = codec.decode_margin(soft)
    assert margin < codec.MIN_MARGIN
    behind = codec.deficits(soft, np.array([value, value ^ 1, value ^ 0x80000000, 12345]))
    # The true payload and its twin in the last bit fit equally; a change early on does not.
    assert behind[0] == behind[1] == 0.0
    assert behind[2] > 10 and behind[3] > 10
