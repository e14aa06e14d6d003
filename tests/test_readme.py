"""The README's examples run as they are."""
import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")


def examples():
    text = Path(README).read_text(encoding="utf-8")
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
    text = Path(README).read_text(encoding="utf-8")
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


def test_readme_process_pool_example_runs_as_a_script(tmp_path):
    """The ProcessPoolExecutor example needs no emulator of its own (its
    client takes its keys from the environment) and runs only as __main__,
    so the loop above passes over it: run it as the script it is, pointed at
    the emulator through GENAUTH_HOST, with the webhooks it names."""
    from genauth_c.emulator import Emulator, WebhookReceiver

    text = Path(README).read_text(encoding="utf-8")
    [code] = [b for b in re.findall(r"```python\n(.*?)```", text, re.S)
              if "ProcessPoolExecutor" in b and "genauth_c.emulator" not in b]
    script = tmp_path / "pool_example.py"
    script.write_text(code, encoding="utf-8")
    with WebhookReceiver() as receiver, Emulator("AK", "SK") as emulator:
        for webhook_id in ("wh1", "wh2", "wh3"):
            emulator.add_webhook(webhook_id, receiver.url)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("GENAUTH_", "AUTHING_"))}
        env.update(GENAUTH_ACCESS_KEY_ID="AK", GENAUTH_ACCESS_KEY_SECRET="SK",
                   GENAUTH_HOST=emulator.url)
        r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "[200, 200, 200]\n"
        assert receiver.wait_for(3, timeout=10)
