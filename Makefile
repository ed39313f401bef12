# Two commands matter: `make test` (lint + every test) and `make demo` (the main job on the local stack).
# Both install what they need on first use and are quick when it is already there.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
IACVENV := .venv-iac

CHROMIUM := /usr/bin/chromium

.PHONY: test test-python demo lint typecheck complexity deps node iac-deps browser-deps checkov bench docs-screenshot clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# checkov pins its own hcl2/pycep versions: keep it apart from the project venv.
$(IACVENV)/.installed:
	$(PYTHON) -m venv $(IACVENV)
	$(IACVENV)/bin/pip install --quiet --disable-pip-version-check "checkov==3.3.30"
	touch $@

deps: $(VENV)/.installed
node: node_modules/.installed
iac-deps: $(IACVENV)/.installed

# Headless Chromium for the browser tests (tests/browser/), from Debian's `chromium` package; Playwright drives it
# and never downloads a browser. Installed as root, as in CI (the package lists are refreshed if the install needs it);
# without root it says what to run: the browser tests then skip (and fail in CI, where CI=true).
browser-deps:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Chromium from Debian's packages for the browser tests ..."; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; \
		test -x $(CHROMIUM); \
	else \
		echo "Chromium is missing at $(CHROMIUM): install it with 'sudo apt-get install -y chromium' to run the browser tests"; \
	fi

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check shared function_app.py localdev

typecheck: deps
	$(BIN)/mypy

# Cyclomatic complexity: radon's report of everything ranked C or worse, then the rule the suite holds
# (nothing in shared/, localdev/ or function_app.py above 15 but the reasoned exceptions in
# tests/unit/test_complexity.py).
complexity: deps
	$(BIN)/radon cc -s -n C shared localdev function_app.py
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit/test_complexity.py

checkov: iac-deps
	$(IACVENV)/bin/checkov --directory infra --config-file .checkov.yaml --skip-download --quiet --compact

test: deps node iac-deps browser-deps lint typecheck checkov
	$(BIN)/python -m pytest

# The suite on another supported interpreter (3.11–3.13), e.g. `make test-python OTHER_PYTHON=python3.13`.
OTHER_PYTHON ?= python3.13
test-python: node
	$(OTHER_PYTHON) -m venv .venv-other
	.venv-other/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	.venv-other/bin/python -m pytest -q

demo: deps node
	$(BIN)/python -m localdev.demo

bench: deps
	$(BIN)/python benchmarks/run.py

# The README's picture of the HTML report page, taken by the browser test that checks the page's numbers.
docs-screenshot: deps browser-deps
	DOCS_SCREENSHOT=docs/report-page.png $(BIN)/python -m pytest -q -p no:cacheprovider \
		tests/browser/test_report_page.py -k numbers_are_the_json_reports

clean:
	rm -rf $(VENV) $(IACVENV) .venv-other node_modules .pytest_cache .mypy_cache .ruff_cache
