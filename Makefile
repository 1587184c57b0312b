# Set-up and checks. `make demo` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
APT_PACKAGES := mosquitto chromium firefox-esr
# Third-party VDA 5050 vehicles the tests drive (Siemens vda-5050-lib), installed from the lockfile
# in tests/peers into var/peers (ignored by git, never vendored).
PEERS_DIR := var/peers
PEERS_STAMP := $(PEERS_DIR)/.installed-stamp

.PHONY: install demo test check lint format system-deps ros-env peers bench sim clean

# ROS 2 Jazzy from PyPI wheels in a virtual environment of its own (var/ros, ignored by git), for
# the simulated ROS robots and cells and the Rust rosbridge of the integration test. The wheels
# install the bridge binary without its exec bit and lack librmw_implementation.so: a symlink to
# the Fast DDS rmw library in a shim folder (tests/ros/stack.py puts it on LD_LIBRARY_PATH).
ROS_DIR := var/ros
ROS_VENV := $(ROS_DIR)/venv
ROS_STAMP := $(ROS_VENV)/.installed-stamp
ROS_PACKAGES := ros-jazzy-rclpy ros-jazzy-std-msgs ros-jazzy-geometry-msgs ros-jazzy-nav-msgs \
	ros-jazzy-sensor-msgs ros-jazzy-std-srvs ros-jazzy-rmw-fastrtps-cpp rosbridge-server-rs

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

$(ROS_STAMP): ros-constraints.txt
	$(PYTHON) -m venv $(ROS_VENV)
	$(ROS_VENV)/bin/pip install --quiet --upgrade pip
	$(ROS_VENV)/bin/pip install --quiet -c ros-constraints.txt $(ROS_PACKAGES)
	chmod +x $(ROS_VENV)/lib/python3*/site-packages/rosbridge_server_rs/rosbridge_server_rs_*
	mkdir -p $(ROS_DIR)/shim
	ln -sf $(abspath $(ROS_VENV))/lib/librmw_fastrtps_cpp.so $(ROS_DIR)/shim/librmw_implementation.so
	touch $(ROS_STAMP)

ros-env: $(ROS_STAMP)

$(PEERS_STAMP): tests/peers/package.json tests/peers/package-lock.json
	mkdir -p $(PEERS_DIR)
	cp tests/peers/package.json tests/peers/package-lock.json $(PEERS_DIR)/
	cd $(PEERS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $(PEERS_STAMP)

peers: system-deps $(PEERS_STAMP)

## demo: the controller with the simulated solar-module plant and the API on http://127.0.0.1:8000
demo: $(STAMP)
	$(BIN)/fleet-sim demo --map solar_module_plant --vehicles 12 --speed 1 --port 8000 --db var/fleet.db

## test: install what the tests need, then lint, type-check and run the whole suite
test: $(STAMP) system-deps ros-env peers check
	$(BIN)/pytest --durations=15

check: lint
	$(BIN)/mypy
	$(BIN)/lint-imports

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Debian packages the integration tests use (MQTT broker, headless browsers, network namespaces
# for ROS 2, Node.js for the third-party VDA 5050 vehicles, the PostgreSQL server the storage
# tests start a cluster of their own with), installed when missing. A PostgreSQL installed here
# creates no cluster of the machine's own (createcluster.conf), so nothing listens on 5432.
system-deps:
	@missing=""; \
	command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v firefox-esr >/dev/null 2>&1 || missing="$$missing firefox-esr"; \
	command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	command -v unshare >/dev/null 2>&1 || missing="$$missing util-linux"; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; else SUDO=none; fi; \
		if [ "$$SUDO" = none ]; then echo "warning: cannot install$$missing (not root, no sudo)"; \
		else echo "installing$$missing"; \
			case "$$missing" in *postgresql*) if [ ! -e /etc/postgresql-common/createcluster.conf ]; then \
				$$SUDO mkdir -p /etc/postgresql-common && \
				echo "create_main_cluster = false" | $$SUDO tee /etc/postgresql-common/createcluster.conf >/dev/null; \
			fi;; esac; \
			$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
			$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
				-o Dpkg::Options::=--force-confold $$missing; fi; \
	fi

## bench: simulation speed for 12, 50 and 100 vehicles (prints figures; not a test)
bench: $(STAMP)
	$(BIN)/python bench/sim_speed.py

## sim: one simulated 8-hour shift with 12 vehicles
sim: $(STAMP)
	$(BIN)/fleet-sim shift --map solar_module_plant --vehicles 12 --hours 8 --seed 1

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
