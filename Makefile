# Every target builds what it needs from scratch: a fresh clone needs only Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PIP_FLAGS ?= -q --disable-pip-version-check
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints/dev.txt | cksum | cut -d' ' -f1)

COMPAT_VERSIONS := 2.11.0 3.0.6
COMPAT_TESTS := tests/integration/test_dags.py::test_dag_files_import tests/integration/test_local_training.py::test_two_instances_train_one_model \
	tests/unit/operators/test_approval.py tests/unit/pipelines/test_approval_and_deploy.py tests/unit/pipelines/test_arrival.py \
	tests/unit/pipelines/test_loader.py tests/unit/pipelines/test_regional_pipeline.py tests/unit/operators/test_processing_request.py \
	tests/unit/operators/test_endpoint_request.py tests/unit/links

.PHONY: venv test test-fast test-faults test-ui docs demo airflow local-up local-down lint bench test-compat clean

$(STAMP): pyproject.toml constraints/dev.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) --upgrade "pip>=24"
	$(VENV)/bin/pip install $(PIP_FLAGS) -c constraints/dev.txt -e ".[dev]"
	touch $@

venv: $(STAMP)

# The OpenLineage provider for tests/unit/test_lineage.py, beside the venv and not in it (installed, its
# listener would run in every other test's Airflow); pinned in constraints/dev.txt.
OPENLINEAGE := .venv-openlineage/.installed
$(OPENLINEAGE): constraints/dev.txt | venv
	rm -rf .venv-openlineage
	$(VENV)/bin/pip install $(PIP_FLAGS) --no-deps --target .venv-openlineage -c constraints/dev.txt \
		apache-airflow-providers-openlineage openlineage-python openlineage-integration-common httpx2
	touch $@

test: venv $(OPENLINEAGE)
	$(VENV)/bin/python -m pytest -q

test-fast: venv $(OPENLINEAGE)
	$(VENV)/bin/python -m pytest -q -m "not slow"

# The fault suite (tests/faults, also part of `make test`): throttling and 5xx on every API, the task
# SIGKILLed at each point of a job's life, triggerer restarts, fail-fast errors, secrets, 50 jobs at
# once. It ends with the count each test proved ("fault suite counts").
test-faults: venv
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/faults

demo: venv
	$(VENV)/bin/airflow-dl demo

# Airflow on localhost (PORT=8080 by default), the DAGs on the local backend; Ctrl-C stops all of it.
PORT ?= 8080
airflow: venv
	$(VENV)/bin/airflow-dl local airflow --port $(PORT)

# The browser suite (tests/ui): `airflow-dl local airflow`, the provider's page and a task log in headless
# chromium, about 5 minutes. Debian's chromium and chromium-driver are installed when missing: playwright
# cannot download a browser of its own here.
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
test-ui: venv
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver; }
	AIRFLOW_DL_UI_TEST=1 AIRFLOW_DL_CHROMIUM=$(CHROMIUM) $(VENV)/bin/python -m pytest -q -p no:cacheprovider -rA tests/ui

# The documentation, warnings as errors (-W; --keep-going lists them all): docs/_build/html/index.html.
# docs/api/ is generated from the package each time (a stale page of a removed module would warn).
docs: venv
	rm -rf docs/api
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html

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
	rm -rf docs/_build docs/api $(VENV) .venv-compat-* .venv-mwaa-* .venv-tools .venv-label-studio .pytest_cache .mypy_cache .ruff_cache

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

.PHONY: tools test-package mwaa-venvs
tools: $(TOOLS_VENV)/.installed-$(CHECKOV_VERSION)

test: tools

# --- Label Studio: Django 5.2 and its own pins fight Airflow's, so it gets its own venv (about 4 min on two
# cores, once per CI run while the version is unchanged), with a migrated template data directory that each
# local server start copies (about 1 min once; a start is then ~10 s). The Label Studio tests find it there.
LABEL_STUDIO_VENV ?= .venv-label-studio
LABEL_STUDIO_VERSION ?= 1.23.2
export AIRFLOW_DL_LABEL_STUDIO_VENV ?= $(CURDIR)/$(LABEL_STUDIO_VENV)

$(LABEL_STUDIO_VENV)/.installed-$(LABEL_STUDIO_VERSION): | $(STAMP)
	@start=$$(date +%s); \
	rm -rf $(LABEL_STUDIO_VENV) && \
	$(PYTHON) -m venv $(LABEL_STUDIO_VENV) && \
	$(LABEL_STUDIO_VENV)/bin/pip install $(PIP_FLAGS) --upgrade "pip>=24" && \
	$(LABEL_STUDIO_VENV)/bin/pip install $(PIP_FLAGS) "label-studio==$(LABEL_STUDIO_VERSION)" && \
	$(VENV)/bin/python -m airflow_dl_provider.backends.local.label_studio_server template && \
	echo "built $(LABEL_STUDIO_VENV) (label-studio $(LABEL_STUDIO_VERSION)) in $$(( $$(date +%s) - start )) s"
	touch $@

.PHONY: label-studio
label-studio: $(LABEL_STUDIO_VENV)/.installed-$(LABEL_STUDIO_VERSION)

test: label-studio

# --- MWAA-faithful venvs: Python 3.12 (as both MWAA images), built the way the image's bootstrap does ---
# safe-pip-install -c airflow_constraints.txt <required packages>, under mwaa_essential_constraints.txt
# (constraints/mwaa/README.md). Skipped: psycopg2 and pycurl, which build from source against libpq and
# libcurl headers; the metadata DB driver and celery's SQS transport are not used by a DagBag parse.
# Python 3.12 comes from pyenv (newest 3.12.x), else from PATH; PYTHON312=... overrides.
MWAA_DIR := constraints/mwaa
MWAA_SKIPPED := psycopg2 pycurl
PYTHON312 ?= $(or $(shell ls -d "$$(pyenv root 2>/dev/null || echo $$HOME/.pyenv)"/versions/3.12.*/bin/python3.12 2>/dev/null | sort -V | tail -n 1),$(shell command -v python3.12 2>/dev/null))
MWAA_STAMPS := $(foreach v,$(COMPAT_VERSIONS),.venv-mwaa-$(v)/.installed)

.venv-mwaa-%/.installed: $(MWAA_DIR)/airflow_constraints-%.txt $(MWAA_DIR)/mwaa_essential_constraints-%.txt $(MWAA_DIR)/required-packages-%.txt
	@test -n "$(PYTHON312)" || { echo "error: no Python 3.12 found (pyenv install 3.12, or make PYTHON312=/path/to/python3.12)"; exit 1; }
	@start=$$(date +%s); \
	rm -rf .venv-mwaa-$* && \
	$(PYTHON312) -m venv .venv-mwaa-$* && \
	.venv-mwaa-$*/bin/pip install $(PIP_FLAGS) --upgrade pip && \
	sed -e 's/$${AIRFLOW_VERSION}/$*/' $(MWAA_DIR)/required-packages-$*.txt \
		| grep -v -x $(foreach p,$(MWAA_SKIPPED),-e $(p)) > .venv-mwaa-$*/required-packages.txt && \
	.venv-mwaa-$*/bin/pip install $(PIP_FLAGS) --constraint $(MWAA_DIR)/mwaa_essential_constraints-$*.txt \
		-c $(MWAA_DIR)/airflow_constraints-$*.txt -r .venv-mwaa-$*/required-packages.txt && \
	echo "built .venv-mwaa-$* ($$($(PYTHON312) -V), skipped $(MWAA_SKIPPED)) in $$(( $$(date +%s) - start )) s"
	touch $@

# Both versions at once: separate folders, and pip's cache writes are atomic.
mwaa-venvs:
	$(MAKE) -j2 $(MWAA_STAMPS)

# stack package for each MWAA version, the offline install into its .venv-mwaa-<v> exactly as MWAA runs
# it, and a DagBag parse of the packaged dags/ (slow; the venvs are reused while their inputs are unchanged).
# Both versions at once, each in its own pytest (-O: one version's output, then the other's).
test-package: venv mwaa-venvs
	$(MAKE) -j2 -O $(foreach v,$(COMPAT_VERSIONS),test-package-$(v))

test-package-%: venv .venv-mwaa-%/.installed
	AIRFLOW_DL_PACKAGE_TEST=1 AIRFLOW_DL_PACKAGE_VERSIONS=$* $(VENV)/bin/python -m pytest -q -rP \
		-p no:cacheprovider -m slow tests/integration/test_package_offline.py

test-compat: test-package
