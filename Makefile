# Every target builds what it needs from scratch: a fresh clone needs only Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PIP_FLAGS ?= -q --disable-pip-version-check
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints/dev.txt | cksum | cut -d' ' -f1)

COMPAT_VERSIONS := 2.11.0 3.0.6
COMPAT_TESTS := tests/integration/test_dags.py::test_dag_files_import tests/integration/test_local_training.py::test_two_instances_train_one_model

.PHONY: venv test test-fast demo airflow local-up local-down lint bench test-compat clean

$(STAMP): pyproject.toml constraints/dev.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) --upgrade "pip>=24"
	$(VENV)/bin/pip install $(PIP_FLAGS) -c constraints/dev.txt -e ".[dev]"
	touch $@

venv: $(STAMP)

test: venv
	$(VENV)/bin/python -m pytest -q

test-fast: venv
	$(VENV)/bin/python -m pytest -q -m "not slow"

demo: venv
	$(VENV)/bin/airflow-dl demo

airflow: venv
	$(VENV)/bin/airflow-dl local airflow

local-up: venv
	$(VENV)/bin/airflow-dl local up

local-down: venv
	$(VENV)/bin/airflow-dl local down

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: venv
	$(VENV)/bin/python benchmarks/parse_time.py

# MWAA's Airflow versions with MWAA-like pins (constraints/mwaa-*.txt): DAG import and local training.
.venv-compat-%/.installed: constraints/mwaa-%.txt pyproject.toml
	rm -rf .venv-compat-$*
	$(PYTHON) -m venv .venv-compat-$*
	.venv-compat-$*/bin/pip install $(PIP_FLAGS) --upgrade "pip>=24"
	.venv-compat-$*/bin/pip install $(PIP_FLAGS) -c constraints/mwaa-$*.txt "apache-airflow==$*" -e ".[dev]"
	touch $@

test-compat: $(foreach v,$(COMPAT_VERSIONS),.venv-compat-$(v)/.installed)
	@for v in $(COMPAT_VERSIONS); do \
		echo "== Airflow $$v"; \
		.venv-compat-$$v/bin/python -m pytest -q -p no:cacheprovider $(COMPAT_TESTS) || exit 1; \
	done

clean:
	rm -rf $(VENV) .venv-compat-* .venv-tools .pytest_cache .mypy_cache .ruff_cache

# --- stacks ---
# checkov pins versions Airflow conflicts with, so it gets its own venv; the stack tests find it there.
TOOLS_VENV ?= .venv-tools
CHECKOV_VERSION ?= 3.3.30
export AIRFLOW_DL_CHECKOV ?= $(CURDIR)/$(TOOLS_VENV)/bin/checkov

$(TOOLS_VENV)/.installed-$(CHECKOV_VERSION):
	rm -rf $(TOOLS_VENV)
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install $(PIP_FLAGS) "checkov==$(CHECKOV_VERSION)"
	touch $@

.PHONY: tools test-package
tools: $(TOOLS_VENV)/.installed-$(CHECKOV_VERSION)

test: tools

# The offline MWAA install of the packaged requirements.txt, on both MWAA Airflow versions (slow).
test-package: venv $(foreach v,$(COMPAT_VERSIONS),.venv-compat-$(v)/.installed)
	AIRFLOW_DL_PACKAGE_TEST=1 $(VENV)/bin/python -m pytest -q -p no:cacheprovider -m slow tests/integration/test_package_offline.py

test-compat: test-package
