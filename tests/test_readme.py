"""The README's examples run as they are."""
import ast
import os
import re
import subprocess
import sys

import pytest

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")


def examples():
    text = open(README, encoding="utf-8").read()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    # The first block talks to the real service; the rest use the emulator.
    return [b for b in blocks if "genauth_c.emulator" in b]


@pytest.mark.parametrize("code", examples())
def test_readme_example_runs(code):
    exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})


def test_readme_has_examples():
    assert len(examples()) >= 4


@pytest.mark.parametrize("code", examples())
def test_readme_examples_fail_when_nothing_is_raised(code):
    """An example that catches an expected exception says what happens when
    none comes (`else: raise AssertionError(...)`): otherwise it would pass
    for nothing."""
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Try) and node.handlers:
            assert node.orelse, (
                f"README.md example, line {node.lineno}: try/except without "
                f"an else that fails")


def test_readme_examples_type_check(tmp_path):
    """Every Python block of the README, the first included, passes mypy --strict
    against the installed package's stubs."""
    pytest.importorskip("mypy")
    text = open(README, encoding="utf-8").read()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    files = []
    for i, block in enumerate(blocks):
        path = tmp_path / f"readme_example_{i}.py"
        path.write_text(block, encoding="utf-8")
        files.append(str(path))
    # From tmp_path, so that genauth_c is the installed package with its .pyi;
    # the examples folder holds the modules the README imports (dask_triggers).
    examples_dir = os.path.join(os.path.dirname(os.path.abspath(README)), "examples")
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         "--cache-dir", os.devnull, *files],
        cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, "MYPYPATH": examples_dir})
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"no issues found in {len(blocks)} source files" in r.stdout, r.stdout
