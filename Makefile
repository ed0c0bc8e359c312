# Entry points people type. Every target runs `bootstrap` first (idempotent).
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv/bin
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
LAB := -i inventories/lab
ROLES_WITH_SCENARIOS = $(patsubst roles/%/molecule/default,%,$(wildcard roles/*/molecule/default))
# The scenarios make test runs, longest first (three at a time): every role's, and the
# stand-in Mac's (molecule/macos).
SCENARIOS_IN_CI = gunicorn_app migration nginx macos backup base postgresql redis

APP_VENV := .venv-app

.PHONY: help bootstrap lint test test-render test-app test-roles test-role test-macos test-stack lab-up lab-down demo bench

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

bootstrap: ## Tooling venv, Docker engine, base images (idempotent)
	@scripts/bootstrap.sh

lint: bootstrap ## yamllint, ansible-lint (production profile), ruff, role conventions, no repeated blocks, no unreviewed secret, syntax check
	yamllint --strict .
	ansible-lint
	ruff check .
	$(VENV)/python scripts/check_duplicates.py
	$(VENV)/python scripts/check_secrets.py
	pytest -q -p no:cacheprovider tests/roles tests/repo
	ansible-playbook $(LAB) --syntax-check site.yml playbooks/*.yml

# scripts/test.py runs the five stages below in order and ends with a table of where
# the time went (also in .cache/test-times.txt).
test: bootstrap ## Everything: lint, render check, app, every role's scenario, the stack; then a time table
	@$(VENV)/python scripts/test.py

# Every role's templates rendered as on Ubuntu 22.04, Ubuntu 24.04 and macOS, and checked
# by the real tools in containers of the Debian releases with the nearest packages.
test-render: bootstrap ## Render every template for Ubuntu 22.04/24.04 and macOS; check each with its tool
	pytest -q -p no:cacheprovider tests/render

# The app's own venv, apart from the tooling .venv (its pins are the release's).
$(APP_VENV)/.installed: app/requirements.txt app/requirements-test.txt
	python3 -m venv $(APP_VENV)
	set -o pipefail; $(APP_VENV)/bin/pip install --quiet -r app/requirements.txt -r app/requirements-test.txt 2>&1 | { grep -v "^WARNING: Location" || true; }
	touch $@

test-app: bootstrap $(APP_VENV)/.installed ## App tests against a real PostgreSQL and Redis on this host
	scripts/host-services.sh >/dev/null
	$(APP_VENV)/bin/pytest -q app/tests

# Scenarios spend much of their time waiting (apt, service start-up, docker exec):
# a few at once finish sooner even on 2 cores. Logs: .cache/molecule/<role>-default.log
ROLE_JOBS ?= 3
test-roles: bootstrap ## Every role's Molecule scenario and the stand-in Mac's ($(ROLE_JOBS) at a time)
	@echo $(SCENARIOS_IN_CI) | tr ' ' '\n' | LVD_QUIET=1 xargs -P $(ROLE_JOBS) -I{} scripts/molecule.sh {}

test-role: bootstrap ## One role's Molecule scenario: make test-role ROLE=<name>
	@test -n "$(ROLE)" || { echo "usage: make test-role ROLE=<name> (one of: $(ROLES_WITH_SCENARIOS))"; exit 2; }
	@scripts/molecule.sh $(ROLE)

# The roles' Darwin task files on a Linux container that plays an Apple Silicon Mac:
# stand-ins for brew, sw_vers and plutil that record every call, facts that say Darwin.
test-macos: bootstrap ## The stand-in Mac's Molecule scenario (molecule/macos)
	@scripts/molecule.sh macos

# The full stack as a Molecule scenario (molecule/stack): the 5-host lab from nothing,
# site.yml twice, a deploy and a rollback under load, then the stack checks (tests/stack:
# a broken deploy, bad hooks, verify.yml, and inventories/single on one more container).
# Leaves the lab up to look at. Logs: .cache/molecule/stack.log, .cache/test-stack/
test-stack: bootstrap ## The full-stack Molecule scenario on the 5-host lab (molecule/stack)
	@scripts/molecule.sh stack

lab-up: bootstrap ## Start the 5-host lab (systemd containers reached over SSH)
	ansible-playbook $(LAB) playbooks/lab-up.yml

lab-down: bootstrap ## Remove every lab container and the lab network
	ansible-playbook $(LAB) playbooks/lab-down.yml

demo: lab-up ## Lab up + site.yml converged on it, then print the URL
	ansible-playbook $(LAB) site.yml
	@echo "The dashboard: http://127.0.0.1:$${LAB_HTTP_PORT:-8080}/"

bench: demo ## Benchmarks of the converged lab, written to bench/results/
	@command -v wrk >/dev/null || { . scripts/lib.sh && apt_install wrk; }
	.venv/bin/python bench/run.py
