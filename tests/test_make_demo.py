"""`make demo`, the README's first command, in a fresh copy of this checkout:
it makes the project environment .venv, installs genauth_c into it only, and
runs the main job; a second run reuses the environment."""
import os
import subprocess
import sys

import pytest

from packaging_env import fresh_copy, make_env, not_under_sanitizer

pytestmark = [pytest.mark.slow, not_under_sanitizer]


def test_make_demo_in_a_fresh_checkout(tmp_path):
    checkout = tmp_path / "genauth-c"
    fresh_copy(checkout)
    # The interpreter this test's environment was made from: Debian's
    # /usr/bin/python3 when make test ran with it, pyenv's here otherwise.
    python = getattr(sys, "_base_executable", sys.executable)
    cmd = ["make", "-C", str(checkout), "demo", f"PYTHON={python}"]

    first = subprocess.run(cmd, env=make_env(), capture_output=True,
                           text=True, timeout=600)
    out = first.stdout + first.stderr
    assert first.returncode == 0, out
    assert "creating .venv with " + python in out
    assert '"statusCode": 200' in first.stdout, out
    assert "=== webhook receiver got request #1 ===" in first.stdout, out
    assert ". .venv/bin/activate" in first.stdout, out

    # Installed into .venv, importable from anywhere with its python.
    venv_py = checkout / ".venv" / "bin" / "python"
    where = subprocess.run(
        [str(venv_py), "-c", "import sys, genauth_c._core as m; "
         "print(sys.prefix); print(m.__file__)"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert where.returncode == 0, where.stderr
    prefix, ext = where.stdout.split()
    assert os.path.samefile(prefix, checkout / ".venv")
    assert ext.startswith(prefix), ext

    second = subprocess.run(cmd, env=make_env(), capture_output=True,
                            text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "creating .venv" not in second.stdout + second.stderr
    assert '"statusCode": 200' in second.stdout
