# MLOps Portal. `make demo` runs the embedded default; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.8
# Tests: real PostgreSQL and Redis (override to point elsewhere).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
export TEST_DATABASE_URL TEST_REDIS_URL
# uv reads the system CA store (a TLS-inspecting proxy may sign with a local CA).
export UV_NATIVE_TLS ?= 1

.PHONY: help install demo test test-fast lint format lock vendor browser-deps deploy-deps check-deploy clean

help:
	@echo "make demo    - set up and run the portal on the embedded default (http://127.0.0.1:8000)"
	@echo "make test    - set up and run the whole test suite (PostgreSQL + Redis on 127.0.0.1), then its SQLite leg"
	@echo "make lint    - ruff check, ruff format --check and the import contracts (lint-imports)"
	@echo "make lock    - re-pin requirements/*.txt from pyproject.toml"
	@echo "make vendor  - copy the pinned front-end files from the npm registry into static/vendor"

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet uv==$(UV_VERSION)

# Installs exactly the lock file (hash-checked); re-runs only when the lock changes.
$(VENV)/.installed: requirements/dev.txt | $(UV)
	$(UV) pip sync --quiet --python $(PY) --require-hashes requirements/dev.txt
	touch $@

install: $(VENV)/.installed

# e.g. make demo DEMO_ARGS="--mlflow-port 5001 --ado-port 8091"
demo: install
	$(PY) manage.py demo $(DEMO_ARGS)

browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "Installing Debian's chromium for the browser tests (apt-get)..."; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		|| { echo "Could not install chromium: run 'sudo apt-get install chromium' and retry"; exit 1; }; \
	fi
	@if ! command -v docker-compose >/dev/null; then \
		echo "Installing Debian's docker-compose (used only to validate docker-compose.yml)..."; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose) \
		|| { echo "Could not install docker-compose: run 'sudo apt-get install docker-compose'"; exit 1; }; \
	fi

# kubectl renders deploy/ (`kubectl kustomize`) for tests/deploy/test_kubernetes.py. Debian's
# package is kubernetes-client (kubectl 1.20, kustomize v2.0.3, which the manifests are written
# for too); a kubectl already on PATH (e.g. the Kubernetes project's `kubectl` package) is used.
deploy-deps:
	@if ! command -v kubectl >/dev/null; then \
		echo "Installing Debian's kubectl (kubernetes-client; used only to render deploy/)..."; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client) \
		|| { echo "Could not install kubectl: run 'sudo apt-get install kubernetes-client' and retry"; exit 1; }; \
	fi

# The PostgreSQL suite, then its SQLite leg: the tests marked `sqlite` (queries whose SQL
# differs between the engines) against the embedded default's database. Exit code 5 is
# "no test selected" (PYTEST_ARGS naming a folder without any): not a failure.
test: install browser-deps deploy-deps
	$(PY) -m pytest $(PYTEST_ARGS)
	DJANGO_SETTINGS_MODULE=portal.settings.test_sqlite $(PY) -m pytest -m sqlite $(PYTEST_ARGS) \
		|| [ $$? -eq 5 ]

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

check-deploy: install
	DJANGO_SETTINGS_MODULE=portal.settings.production \
	DJANGO_SECRET_KEY=ci-dummy-secret-key-for-deploy-checks-only-0123456789abcdef \
	DJANGO_ALLOWED_HOSTS=portal.example.com \
	DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
	REDIS_URL=redis://127.0.0.1:6379/0 \
	$(PY) manage.py check --deploy --fail-level WARNING

lock: $(UV)
	$(UV) pip compile --quiet pyproject.toml --python-version 3.11 --generate-hashes -o requirements/base.txt
	$(UV) pip compile --quiet pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements/dev.txt

vendor:
	npm ci --no-audit --no-fund --ignore-scripts
	rm -rf static/vendor && mkdir -p static/vendor/bootstrap static/vendor/bootstrap-icons/fonts static/vendor/htmx static/vendor/chartjs
	cp node_modules/bootstrap/dist/css/bootstrap.min.css node_modules/bootstrap/dist/css/bootstrap.min.css.map static/vendor/bootstrap/
	cp node_modules/bootstrap/dist/js/bootstrap.bundle.min.js node_modules/bootstrap/dist/js/bootstrap.bundle.min.js.map static/vendor/bootstrap/
	cp node_modules/bootstrap/LICENSE static/vendor/bootstrap/LICENSE
	cp node_modules/bootstrap-icons/font/bootstrap-icons.min.css static/vendor/bootstrap-icons/
	cp node_modules/bootstrap-icons/font/fonts/bootstrap-icons.woff2 node_modules/bootstrap-icons/font/fonts/bootstrap-icons.woff static/vendor/bootstrap-icons/fonts/
	cp node_modules/bootstrap-icons/LICENSE static/vendor/bootstrap-icons/LICENSE
	cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx/
	cp node_modules/htmx.org/LICENSE static/vendor/htmx/LICENSE
	cp node_modules/chart.js/dist/chart.umd.min.js node_modules/chart.js/dist/chart.umd.min.js.map static/vendor/chartjs/
	cp node_modules/chart.js/LICENSE.md static/vendor/chartjs/LICENSE

clean:
	rm -rf $(VENV) var node_modules
