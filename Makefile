# genauth-c: every command a developer or CI needs. `make demo` and `make test`
# install what is missing first (Debian packages, PyPI test tools), so they
# work on a fresh machine.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
DEB_PACKAGES := libcurl4-openssl-dev libcjson-dev libssl-dev pkg-config gcc make valgrind
PY_TEST_TOOLS := pytest mypy hypothesis

CFLAGS_WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wno-missing-field-initializers
CORE_SRC := $(sort $(wildcard src/core/*.c))
CORE_CFLAGS = -std=c11 -D_GNU_SOURCE -g -O1 $(CFLAGS_WARN) -Werror -Isrc/core \
	$(shell pkg-config --cflags libcurl libcjson libcrypto)
CORE_LIBS = $(shell pkg-config --libs libcurl libcjson libcrypto) -lpthread -lm
C_TESTS := $(patsubst tests/c/%.c,build/tests/%,$(wildcard tests/c/test_*.c))

.PHONY: all deps install demo test test-deps ctest ctest-valgrind pytest typecheck clean

all: install

# Debian packages, only those missing (apt-get update once, then install).
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

install: deps
	$(PIP) install --quiet --disable-pip-version-check .

# The main job: the emulator, a local webhook receiver, one trigger_webhook.
demo: install
	$(PYTHON) -m genauth_c.demo

test-deps: deps
	@$(PYTHON) -c "import pytest, mypy, hypothesis" 2>/dev/null || \
	  $(PIP) install --quiet --disable-pip-version-check $(PY_TEST_TOOLS)

# Every test: the core's C unit tests (also under valgrind), then pytest.
test: install test-deps ctest ctest-valgrind pytest

build/tests/%: tests/c/%.c $(CORE_SRC) $(wildcard src/core/*.h) tests/c/check.h
	@mkdir -p build/tests
	$(CC) $(CORE_CFLAGS) -o $@ $< $(CORE_SRC) $(CORE_LIBS)

ctest: $(C_TESTS)
	@for t in $(C_TESTS); do $$t || exit 1; done

ctest-valgrind: $(C_TESTS)
	@for t in $(C_TESTS); do \
	  valgrind -q --leak-check=full --errors-for-leak-kinds=definite \
	    --error-exitcode=1 $$t || exit 1; done

pytest:
	$(PYTHON) -m pytest -q tests

clean:
	rm -rf build *.egg-info genauth_c/*.so
