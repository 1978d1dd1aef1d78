"""audio-synth core library: plain Python + torch, never imports Prefect."""

__version__ = "0.1.0"
