# Both entry points bootstrap their own virtual environment (.venv) on a fresh machine.
# llama-cpp-python compiles from source once (≈ 5–7 min on 2 cores); pip caches the wheel.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
export CMAKE_ARGS

.PHONY: demo test lint format bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[llamacpp,dev]'
	touch $@

# The hf extra for its backend tests; torch pinned to the CPU build (a bare `torch` would pull
# several GB of CUDA wheels).
$(VENV)/.installed-hf: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet 'torch==2.13.0'
	$(BIN)/python -m pip install --quiet -e '.[hf]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/trustdiff demo --out runs/demo

test: $(VENV)/.installed $(VENV)/.installed-hf
	$(BIN)/ruff check src tests
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

format: $(VENV)/.installed
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

bench: $(VENV)/.installed
	$(BIN)/python bench/demo_time.py
	$(BIN)/python bench/judges_throughput.py
	$(BIN)/python bench/stats_speed.py
	bash bench/install_time.sh

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
