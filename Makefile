# One command per developer loop. `make help` lists them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help run test test-unit test-integration lint bench messages system-packages system-test-packages clean

help: ## list the commands
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

system-packages:
	bash scripts/install-debian.sh

system-test-packages:
	bash scripts/install-debian.sh --test

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test,lint]'
	touch $(STAMP)

# The demo's certificates come from Caddy's own authority: no ACME server needs to reach it.
run: export CHATON_PROXY_TLS ?= internal
run: system-packages $(STAMP) ## install everything, load the demo collective, serve on http://127.0.0.1:8000
	$(BIN)/chaton init --admin-uid admin --no-input
	$(BIN)/chaton demo
	$(BIN)/chaton serve

test: system-test-packages $(STAMP) ## install what the tests need and run the whole suite (SQLite, then the directory tests on PostgreSQL)
	$(BIN)/pytest -q
	CHATON_TEST_DB=postgres $(BIN)/pytest -q -m directory; status=$$?; [ $$status -eq 0 ] || [ $$status -eq 5 ]

# The fast tier and the linters need only the virtual environment: an ordinary user runs
# them (system-packages installs Debian packages, which needs root).
test-unit: $(STAMP) ## the fast tier only (fakes, no servers)
	$(BIN)/pytest -q -m "not integration"

lint: $(STAMP) ## ruff, mypy (strict, django-stubs) and missing migrations
	$(BIN)/ruff check .
	$(BIN)/mypy chaton
	CHATON_DATA_DIR=$$(mktemp -d) $(BIN)/python -m django makemigrations --check --dry-run --settings=chaton.project.settings

bench: system-test-packages $(STAMP) ## benchmarks: one `BENCH name value unit` line per figure
	$(BIN)/python -m bench

messages: $(STAMP) ## refresh the French catalogue and compile it
	cd chaton && ../$(BIN)/django-admin makemessages -l fr --no-obsolete --settings=chaton.project.settings
	cd chaton && ../$(BIN)/django-admin compilemessages --settings=chaton.project.settings

clean: ## remove the virtual environment and the local data directory
	rm -rf $(VENV) var
