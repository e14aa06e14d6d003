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
    for line in (5, 6, 7):
        assert f"misuse_async.py:{line}: error" in r.stdout, r.stdout


def test_every_method_is_a_coroutine_with_the_sync_signature():
    for name in ("trigger_webhook", "trigger_webhooks"):
        method = getattr(AsyncManagementClient, name)
        assert inspect.iscoroutinefunction(method)
        sync = inspect.signature(getattr(ManagementClient, name))
        # Parameters after self: names, kinds and defaults.
        assert list(inspect.signature(method).parameters.values())[1:] == \
            list(sync.parameters.values())[1:]
    for name in ("aclose", "__aenter__", "__aexit__"):
        assert inspect.iscoroutinefunction(getattr(AsyncManagementClient, name))
    for name in ("host", "timeout", "closed", "token_fetches"):
        assert hasattr(AsyncManagementClient, name)
    assert "AsyncManagementClient" in genauth_c.__all__
