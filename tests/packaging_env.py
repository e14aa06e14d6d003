"""What the tests that run make, pip and venv (test_wheel, test_make_demo)
share: the checkout's root, a clean environment for a nested make, and when
those tests cannot run here."""
import os
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))


def make_env(**extra):
    """os.environ without what a surrounding make or venv passes down:
    MAKEFLAGS would carry `make test`'s command-line variables (PYTHON=,
    VENV=) into the nested make, and make also exports command-line
    variables themselves; VIRTUAL_ENV and the venv's bin on PATH would make
    the nested commands see this environment's python."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES",
                        "VIRTUAL_ENV", "PYTHONPATH", "LD_PRELOAD", "VENV",
                        "PYTHON")}
    venv_bin = os.path.join(sys.prefix, "bin")
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env.update(extra)
    return env


# Building and installing do not change under a sanitizer: `make sanitize`
# reruns the suite with the ASan runtime preloaded, and compilers, pip and
# make would run under it too.
not_under_sanitizer = pytest.mark.skipif(
    "asan" in os.environ.get("LD_PRELOAD", ""),
    reason="builds and installs: run by `make pytest`, not under ASan")
