# Quick start: `make run` (the main job) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run compare reference test test-fast lab trust bench report clean

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

# Maintainers: rewrite the committed reference results (tables and figures) from the main job.
reference: $(STAMP)
	$(PY) -m pcoh --output results/reference

# PCOH_SMOKE=1 shrinks the notebooks' budgets; the same code paths run.
test: $(STAMP)
	PCOH_SMOKE=1 MPLBACKEND=Agg $(PY) -m pytest tests
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
	  PCOH_SMOKE=1 MPLBACKEND=Agg $(PY) -m pytest --nbval-lax --nbval-current-env notebooks; fi

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
