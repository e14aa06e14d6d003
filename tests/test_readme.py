"""The README's examples run as they are."""
import ast
import os
import re

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
