# Two commands: `make run` starts the whole product, `make test` proves it. Both set everything up.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
export FLASK_APP := app
export HUB_PORT := $(PORT)
SANDBOX_PORT ?= 5050
export SANDBOX_PORT
export SANDBOX_URL ?= http://127.0.0.1:$(SANDBOX_PORT)

PY_STAMP := $(VENV)/.installed
JS_STAMP := node_modules/.installed
VENDOR := static/vendor/htmx.min.js static/vendor/pico.min.css static/vendor/chart.umd.min.js
CATALOGS := $(wildcard translations/*/LC_MESSAGES/messages.po)
COMPILED := $(CATALOGS:.po=.mo)

.PHONY: run test setup lint typecheck chromium screenshots translations-update reset clean

run: setup
	@mkdir -m 700 -p instance
	$(BIN)/flask db upgrade
	$(BIN)/flask seed-demo
	@echo ""
	@echo "  Order Hub is starting on http://127.0.0.1:$(PORT)"
	@echo "  Sign in as $${DEMO_EMAIL:-demo@example.com} / $${DEMO_PASSWORD:-demo1234}    (Ctrl-C stops everything)"
	@echo "  The sandbox marketplace and shop: http://127.0.0.1:$(SANDBOX_PORT)"
	@echo ""
	$(BIN)/honcho start -f Procfile $(if $(REDIS_URL),web worker cron sandbox mail,)

test: setup chromium lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

setup: $(PY_STAMP) $(VENDOR) $(COMPILED)

$(PY_STAMP): requirements.txt requirements-dev.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

$(JS_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

static/vendor/htmx.min.js: $(JS_STAMP)
	mkdir -p static/vendor && cp node_modules/htmx.org/dist/htmx.min.js $@

static/vendor/pico.min.css: $(JS_STAMP)
	mkdir -p static/vendor && cp node_modules/@picocss/pico/css/pico.min.css $@

static/vendor/chart.umd.min.js: $(JS_STAMP)
	mkdir -p static/vendor && cp node_modules/chart.js/dist/chart.umd.min.js $@

%.mo: %.po $(PY_STAMP)
	$(BIN)/pybabel compile --use-fuzzy -i $< -o $@

# Debian's Chromium drives the browser tests; Playwright's own browser download is not used.
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y -q chromium; \
	  elif command -v sudo >/dev/null; then sudo apt-get install -y -q chromium; \
	  else echo "Install Chromium (apt-get install chromium) for the browser tests." >&2; exit 1; fi; }

lint: $(PY_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(PY_STAMP)
	$(BIN)/mypy

# The README's picture of the General settings page, taken by the browser tests.
screenshots: setup chromium
	mkdir -p docs/screenshots
	SCREENSHOT_DIR=docs/screenshots $(BIN)/pytest -q tests/browser -k "every_section or new_orders_and_status or overview_draws or way_on_its_page"

# After changing UI text: refresh the catalogs, then translate what is new in the .po files.
translations-update: $(PY_STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -k N_ -o translations/messages.pot --no-location --omit-header .
	$(BIN)/pybabel update -i translations/messages.pot -d translations --ignore-obsolete

# Start the demo afresh: the hub's database, the sandbox's orders and the mails caught (the keys stay).
reset:
	rm -rf instance/hub.sqlite3 instance/sandbox.json instance/mail

clean:
	rm -rf $(VENV) node_modules static/vendor translations/*/LC_MESSAGES/*.mo
