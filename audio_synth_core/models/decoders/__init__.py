"""The acoustic model's decoders, one module per family. Each predicts the normalized mel as
``mu`` plus a residual and has the same methods:

- ``noise_shape(batch, frames)``: the shape of the explicit noise input (``(0,)``: none);
- ``losses(h, mu, mask, target, generator)``: named training losses (an optional
  ``weighted(losses)`` combines them, else they are summed);
- ``forward(h, mu, mask, noise)``: the normalized mel ``[B, T, n_mels]``, zero outside the mask.

A new decoder is a new module here plus one line in ``acoustic.DECODER_CLASSES``.
"""
