# Every target sets up what it needs from this repository's own files.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test lint demo bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch is pinned and installed first, so that nothing can pull a newer (CUDA) build.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: setup lint
	$(PY) -m pytest -q

demo: setup
	$(VENV)/bin/conceptid simulate --preset quad --n-per-context 2000 --image-size 32 --out demo_out/quad --overwrite
	$(VENV)/bin/conceptid inspect demo_out/quad

bench: setup
	$(PY) benchmarks/bench_sampling.py
	$(PY) benchmarks/bench_render.py
	$(PY) benchmarks/bench_check.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache .ruff_cache
