"""AsyncManagementClient's stubs are real: mypy accepts correct use (awaited
coroutines) and rejects misuse; the stubs name what the module has."""
import inspect

from test_typing import mypy

import genauth_c
from genauth_c import AsyncManagementClient, ManagementClient


def test_async_stubs_accept_correct_use():
    r = mypy("usage_async.py")
    assert r.returncode == 0, r.stdout + r.stderr


def test_async_stubs_reject_misuse():
    r = mypy("misuse_async.py")
    assert r.returncode == 1, r.stdout + r.stderr
    for line in range(5, 12):
        assert f"misuse_async.py:{line}: error" in r.stdout, r.stdout


# ManagementClient's method table, which AsyncManagementClient is made from:
# a new endpoint's method is checked here without being listed again.
API_METHODS = tuple(name for name, *_ in genauth_c._core._API_METHODS)


def test_every_method_is_a_coroutine_with_the_sync_signature():
    for name in API_METHODS + ("trigger_webhooks",):
        method = getattr(AsyncManagementClient, name)
        assert inspect.iscoroutinefunction(method), name
        sync = inspect.signature(getattr(ManagementClient, name))
        # Parameters after self: names, kinds and defaults.
        assert list(inspect.signature(method).parameters.values())[1:] == \
            list(sync.parameters.values())[1:], name
        assert method.__qualname__ == f"AsyncManagementClient.{name}"
        assert getattr(ManagementClient, name).__doc__ in method.__doc__
    assert inspect.signature(AsyncManagementClient) == \
        inspect.signature(ManagementClient)
    for name in ("aclose", "__aenter__", "__aexit__"):
        assert inspect.iscoroutinefunction(getattr(AsyncManagementClient, name))
    assert "AsyncManagementClient" in genauth_c.__all__


def test_the_stubs_name_every_method_and_property():
    """Every public name of ManagementClient is on AsyncManagementClient and
    in its stub (close becomes aclose, __enter__/__exit__ the async ones)."""
    import ast
    import pathlib

    stub = ast.parse(pathlib.Path(genauth_c.__file__).with_suffix(".pyi").read_text())
    (cls,) = [n for n in stub.body if isinstance(n, ast.ClassDef)
              and n.name == "AsyncManagementClient"]
    in_stub = {n.name for n in cls.body
               if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    sync = {n for n in dir(ManagementClient) if not n.startswith("_")}
    want = (sync - {"close"}) | {"aclose", "__aenter__", "__aexit__"}
    assert want <= in_stub
    assert all(hasattr(AsyncManagementClient, n) for n in want)
    async_defs = {n.name for n in cls.body if isinstance(n, ast.AsyncFunctionDef)}
    assert set(API_METHODS) | {"trigger_webhooks"} <= async_defs
