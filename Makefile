# Every target sets up what it needs from this repository's own files.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: setup test lint demo bench package docs clean

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

# two worker processes (pytest-xdist): every test runs one torch thread (tests/conftest.py), so
# two processes fill a 2-core machine; run one file alone with `$(PY) -m pytest tests/FILE`
test: setup lint
	$(PY) -m pytest -q -n 2

# the documentation site, built strictly (a broken link, a page left out of the navigation or a
# docstring griffe cannot parse fails it) into site/; the docs extra is installed once
$(DOCS_STAMP): pyproject.toml $(STAMP)
	$(PY) -m pip install --quiet -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(PY) -m mkdocs build --strict --site-dir site

# build the sdist and the wheel, install the wheel into a fresh environment outside the
# repository and try it there (what a user of the package gets)
package: setup
	PY=$(PY) bash .ci/package_smoke

# the main job on the built-in default benchmark (quad, 32x32); an interrupted demo resumes
demo: setup
	$(VENV)/bin/conceptid run --out demo_out

bench: setup
	$(PY) benchmarks/bench_sampling.py
	$(PY) benchmarks/bench_render.py
	$(PY) benchmarks/bench_check.py
	$(PY) benchmarks/bench_masking.py

clean:
	rm -rf $(VENV) demo_out runs site build/docs_api .pytest_cache .ruff_cache
