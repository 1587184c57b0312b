# Set-up and checks. `make demo` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
APT_PACKAGES := mosquitto chromium firefox-esr

.PHONY: install demo test check lint format system-deps bench sim clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## demo: the controller with the simulated solar-module plant and the API on http://127.0.0.1:8000
demo: $(STAMP)
	$(BIN)/fleet demo --map solar_module_plant --vehicles 12 --speed 1 --port 8000 --db var/fleet.db

## test: install what the tests need, then lint, type-check and run the whole suite
test: $(STAMP) system-deps check
	$(BIN)/pytest

check: lint
	$(BIN)/mypy

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Debian packages the integration tests use (MQTT broker, headless browsers), installed when missing.
system-deps:
	@missing=""; \
	command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v firefox-esr >/dev/null 2>&1 || missing="$$missing firefox-esr"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; else SUDO=none; fi; \
		if [ "$$SUDO" = none ]; then echo "warning: cannot install$$missing (not root, no sudo)"; \
		else echo "installing$$missing"; \
			$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
			$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi; \
	fi

## bench: simulation speed for 12, 50 and 100 vehicles (prints figures; not a test)
bench: $(STAMP)
	$(BIN)/python bench/sim_speed.py

## sim: one simulated 8-hour shift with 12 vehicles
sim: $(STAMP)
	$(BIN)/fleet sim --map solar_module_plant --vehicles 12 --hours 8 --seed 1

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
