# The two commands of the README:
#   make site   render every recipe on the built-in data and build the docs site
#   make test   run the test suite (default suite, the JAX and PyTorch passes, the browser test)
# Each installs what it needs: a virtual environment in .venv, plus graphviz and
# Chromium from Debian's packages when they are missing.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install system-deps test test-fast site render clean

# The recipe checks that hold on every backend (marker `backends`): the default suite runs
# them on TensorFlow, `make test` again on JAX and PyTorch.
BACKEND_TESTS := -m 'backends and not heavy' tests/test_recipes.py tests/test_backends.py tests/test_residual.py tests/test_highway.py tests/test_vae.py \
	tests/test_dcgan.py

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,jax,torch,docs]'
	touch $(STAMP)

install: $(STAMP)

system-deps:
	@if ! command -v dot >/dev/null || ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq graphviz chromium chromium-driver >/dev/null; \
	fi

test: install system-deps
	$(PY) -m pytest -q -p no:cacheprovider
	KERAS_BACKEND=jax $(PY) -m pytest -q -p no:cacheprovider -m "not slow" tests/test_visualize.py
	KERAS_BACKEND=jax $(PY) -m pytest -q -p no:cacheprovider $(BACKEND_TESTS)
	KERAS_BACKEND=torch $(PY) -m pytest -q -p no:cacheprovider $(BACKEND_TESTS)
	$(PY) -m pytest -q -p no:cacheprovider -m heavy
	$(PY) -m pytest -q -p no:cacheprovider -m browser tests/test_site_browser.py

test-fast: install
	$(PY) -m pytest -q -p no:cacheprovider -x

render: install system-deps
	$(PY) -m cookbook.cli render

site: render
	$(PY) -m mkdocs build --strict

clean:
	rm -rf site build .pytest_cache
