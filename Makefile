# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,hf]'
	# resemblyzer pins ancient numpy/torch/typing: its encoder is all we need, so no deps.
	$(BIN)/pip install --quiet --no-deps resemblyzer==0.1.4
	# flite provides real recorded-speaker voices for privacy tests (optional; tests skip without it).
	command -v flite >/dev/null || (command -v apt-get >/dev/null && (apt-get update -qq && apt-get install -y -qq flite) >/dev/null 2>&1) || true
	# ffmpeg's shared libraries let torchcodec (datasets' Audio decoding) run (tests skip without them).
	ldconfig -p | grep -q libavformat.so.59 || (command -v apt-get >/dev/null && (apt-get install -y -qq --no-install-recommends libavformat59 libavcodec59 libavutil57 libswresample4 libavdevice59 libavfilter8 libswscale6 || (apt-get update -qq && apt-get install -y -qq --no-install-recommends libavformat59 libavcodec59 libavutil57 libswresample4 libavdevice59 libavfilter8 libswscale6)) >/dev/null 2>&1) || true
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/audio-synth run configs/catalog-demo.yaml

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff format --check . && $(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m benchmarks.throughput
