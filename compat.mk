# `make test-compat`: the provider, DAG and docs tests on the Airflow 2.x line that MWAA runs, in .venv-compat
# (Python 3.11, uv). Included from the main Makefile; standalone: `make -f compat.mk test-compat`. The engine's
# tests are left out: the engine never imports Airflow and gets the same boto3 here as in .venv.
#
# Airflow's constraint files are on GitHub (unreachable here), so what matters is pinned: Airflow and the
# provider versions uv resolves for it (2.10.5 -> amazon 9.17.0, common-compat 1.9.0, the oldest compat the
# provider supports). Airflow, its providers and the test packages are resolved in one step; the project then
# goes in with --no-deps (its `test` extra pins Airflow 3), so nothing upgrades Airflow.
COMPAT_PYTHON ?= python3.11
COMPAT_VENV := .venv-compat
COMPAT_PY := $(COMPAT_VENV)/bin/python
COMPAT_AIRFLOW ?= 'apache-airflow==2.10.5' 'apache-airflow-providers-amazon[aiobotocore]==9.17.0' \
	'apache-airflow-providers-common-compat==1.9.0'
COMPAT_TEST_DEPS := 'moto[server]==5.2.5' 'awscrt==0.38.1' crc32c 'PyYAML>=6' 'pytest>=8' pytest-xdist pytest-timeout
COMPAT_TESTS ?= tests/provider tests/dags tests/docs

.PHONY: test-compat

$(COMPAT_VENV)/.installed: setup.cfg pyproject.toml compat.mk
	test -x $(COMPAT_PY) || $(COMPAT_PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_PY) -m pip install --quiet --disable-pip-version-check uv
	$(COMPAT_VENV)/bin/uv pip install --quiet -p $(COMPAT_PY) $(COMPAT_AIRFLOW) $(COMPAT_TEST_DEPS)
	$(COMPAT_VENV)/bin/uv pip install --quiet -p $(COMPAT_PY) --no-deps -e .
	touch $@

# Airflow 2 in unit-test mode (which the provider tests turn on) defaults to the LocalExecutor, which refuses
# SQLite.
test-compat: $(COMPAT_VENV)/.installed
	$(COMPAT_PY) -c 'import airflow; print("Airflow", airflow.__version__)'
	AIRFLOW__CORE__EXECUTOR=SequentialExecutor $(COMPAT_PY) -m pytest -n 2 -q $(COMPAT_TESTS)
