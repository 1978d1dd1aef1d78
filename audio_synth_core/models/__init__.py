"""The project's own generator models: text frontend, FastSpeech-style acoustic model (with
deterministic, VAE or diffusion decoder), HiFi-GAN-style vocoder, Griffin-Lim baseline, training
loops with resumable checkpoints, and ``TTSModel`` (batched synthesis, save/load).

Modules are imported where used (``from audio_synth_core.models.tts import TTSModel``): importing
this package does not import torch.
"""
