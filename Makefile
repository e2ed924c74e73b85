# Every target builds its own environment in .venv at the repo root: nothing has to be installed by hand.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed

.PHONY: test demo clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv
	$(UV) pip install --quiet -p $(PY) -e '.[test]'
	touch $(STAMP)

LINTED := airflow_provider_mxtransfer worker dags demo benchmarks infra tests

test: $(STAMP)
	$(VENV)/bin/ruff check --select F,E9 $(LINTED)
	$(PY) -m pytest -n 2 -q tests

demo: $(STAMP)
	$(PY) -m demo

clean:
	rm -rf $(VENV) .pytest_cache

# AWS deployment targets (install, publish, outputs): see infra/README.md.
-include infra/infra.mk
# make test-compat: the suite on the Airflow 2.x (MWAA) line, in .venv-compat.
-include compat.mk
# make bench (full peer benchmark on the S3 emulator, writes BENCHMARKS.md), bench-tiny, bench-profile.
-include benchmarks/bench.mk
bench bench-tiny bench-profile: $(STAMP)
