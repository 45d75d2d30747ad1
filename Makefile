# Quick start: `make run` (the main job) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run compare reference test test-fast lab trust present chromium bench report clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Re-install whenever pyproject.toml changes.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

# The main job into results/latest/ (not tracked by git: a rerun modifies no committed file).
run: $(STAMP)
	$(PY) -m pcoh

# The main job (cached runs are reused), checked against the committed reference results:
# numbers within the stated tolerances and every verdict the same, else exit status 1.
compare: $(STAMP)
	$(PY) -m pcoh --compare results/reference

# Maintainers: rewrite the committed reference results (tables and figures) from the main job, and
# README's results block from them.
reference: $(STAMP)
	$(PY) -m pcoh --output results/reference
	$(PY) scripts/readme_results.py

# PCOH_SMOKE=1 shrinks the notebooks' budgets; the same code paths run.
# The browser tests (marked `browser`) come last: the notebook runs before them fill the smoke cache
# that their Run All reads.
test: $(STAMP)
	PCOH_SMOKE=1 MPLBACKEND=Agg $(PY) -m pytest tests -m "not browser"
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
	  PCOH_SMOKE=1 MPLBACKEND=Agg $(PY) -m pytest --nbval-lax --nbval-current-env notebooks; fi
	PCOH_SMOKE=1 $(PY) -m pytest tests -m browser

# The unit tests alone: no notebooks, no end-to-end runs (the tests marked `slow`).
test-fast: $(STAMP)
	PCOH_SMOKE=1 MPLBACKEND=Agg $(PY) -m pytest tests -m "not slow"

# Trusted notebooks show their saved widgets as controls and their styled tables on opening.
# Only the project's own notebooks are signed (their bytes those committed at HEAD), in your own
# Jupyter data folder (`jupyter --data-dir`); a notebook received from elsewhere or changed since
# the last commit is left unsigned, with a line saying why. `make lab` always does it first.
trust: $(STAMP)
	$(PY) scripts/trust.py

lab: trust
	$(VENV)/bin/jupyter lab notebooks

# A notebook as a clean page for a projector: Voila runs it and shows its controls and figures, no
# code, served from this machine only: its template (present/voila/templates/pcoh) drops the lab
# template's two stylesheets on a CDN, so it loads nothing from another host. NOTEBOOK=... picks another.
NOTEBOOK ?= notebooks/10-watch-a-student-learn.ipynb
present: $(STAMP)
	PCOH_PRESENT=1 JUPYTER_PATH=$(CURDIR)/present $(VENV)/bin/voila --Voila.ip=127.0.0.1 --template=pcoh $(NOTEBOOK)

# The browser tests (tests/test_browser.py) drive the system's Chromium (Debian's package; needs root).
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

# The CPU numbers in one run: the machine and thread counts, PC loss / PKT (n = 256, 1024), the
# per-reference Spearman at N = 10,000 (warm, cosine and Euclidean; compile time apart), and two
# tiny main jobs started together against one alone. Every script's --smoke runs in the tests.
bench: $(STAMP)
	$(PY) benchmarks/bench_loss.py --sizes 256 1024 --naive-max-n 256 --spearman-only
	$(PY) benchmarks/bench_threads.py

# Every executed notebook as one self-contained HTML page in reports/ (converted, not re-run).
report: $(STAMP)
	$(PY) scripts/report.py --output reports

clean:
	rm -rf $(VENV) .pytest_cache
