"""Training loops for the acoustic model (``training.acoustic``) and the vocoder
(``training.vocoder``), with checkpoints and exact resume (``training.checkpoints``).

Both loops are plain functions: a dataset in, trained modules and final metrics out. Randomness comes
from the ``torch.Generator`` passed in (data order, segment offsets, diffusion/VAE noise); the
global RNG that dropout and weight initialization use is seeded from it inside
``torch.random.fork_rng``, so the caller's global state is left untouched.

A call that finds checkpoints at its ``checkpoint_url`` resumes from the newest and runs to the same
final step: on the same device and thread count the result equals an uninterrupted run bit for bit.
"""
