"""The .pyi stubs are real: mypy accepts correct use and rejects misuse."""
import os
import subprocess
import sys

import pytest

HERE = os.path.join(os.path.dirname(__file__), "typing")


def mypy(path):
    pytest.importorskip("mypy")
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         "--cache-dir", os.devnull, os.path.join(HERE, path)],
        capture_output=True, text=True)


def test_stubs_accept_correct_use():
    r = mypy("usage.py")
    assert r.returncode == 0, r.stdout + r.stderr


def test_stubs_reject_misuse():
    r = mypy("misuse.py")
    assert r.returncode == 1, r.stdout + r.stderr
    for line in range(5, 15):
        assert f"misuse.py:{line}: error" in r.stdout, r.stdout


def test_stubs_match_the_module():
    import genauth_c
    from genauth_c import ManagementClient
    for name in ("trigger_webhook", "trigger_webhooks", "close", "host",
                 "timeout", "closed", "token_fetches", "create_webhook",
                 "list_webhooks", "get_webhook", "update_webhook",
                 "delete_webhook", "get_webhook_logs",
                 "get_webhook_event_list", "access_key_id", "lang",
                 "use_unverified_ssl"):
        assert hasattr(ManagementClient, name)
    assert ManagementClient.trigger_webhook.__text_signature__ == (
        "($self, webhook_id, request_headers=None, request_body=None)")
    assert "webhook" in ManagementClient.trigger_webhook.__doc__
    assert ManagementClient.update_webhook.__text_signature__ == (
        "($self, webhook_id, name=None, url=None, events=None,\n"
        "               content_type=None, enabled=None, secret=None, *,\n"
        "               retry_config=None)")
    for name in genauth_c.__all__:
        assert hasattr(genauth_c, name)
