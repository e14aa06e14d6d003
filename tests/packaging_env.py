"""What the tests that run make, pip and venv (test_wheel, test_make_demo,
test_sdist) share: the checkout's root, a copy of its tracked files, a clean
environment for a nested make, and when those tests cannot run here."""
import os
import shutil
import subprocess
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


def fresh_copy(dest):
    """The checkout's tracked files as they are now (edits included), as a
    fresh clone would have them, without build products or environments."""
    r = subprocess.run(["git", "-C", ROOT, "ls-files", "-z"],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip("not a git checkout: " + r.stderr.decode(errors="replace"))
    for rel in r.stdout.decode().split("\0"):
        if rel and os.path.isfile(os.path.join(ROOT, rel)):
            os.makedirs(os.path.join(dest, os.path.dirname(rel)), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, rel), os.path.join(dest, rel))


def venv_with_wheel(python, wheel, tmp_path_factory):
    """The python of a fresh venv of `python` holding only the wheel."""
    venv = tmp_path_factory.mktemp("wheel-venv")
    subprocess.run([python, "-m", "venv", str(venv)], check=True,
                   timeout=300)
    py = str(venv / "bin" / "python")
    subprocess.run([py, "-m", "pip", "install", "--quiet", "--no-index",
                    "--no-deps", "--disable-pip-version-check", wheel],
                   check=True, timeout=300)
    return py
