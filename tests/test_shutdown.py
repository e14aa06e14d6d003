"""The interpreter's end, with the product in use: each script runs in a
Python of its own (sys.executable) against a server in this process, and
must end as a script that never imported genauth_c would: its own exit
status, no crash, no hang, nothing on stderr it did not write itself.

The servers hold answers (the script is told on its standard input once a
request arrived), so a call is in flight at the interpreter's end however
slow the machine."""
import dataclasses
import subprocess
import sys
import textwrap
import threading

import pytest

from conftest import AK, SK
from rawserver import FakeGenAuth, RawServer

# A script gets this long to end; it takes well under a second unless it
# hangs, which is what the bound catches.
HANG = 60


def run_script(code, *args, when=None, env=None):
    """Runs `code` with args in sys.argv[1:]; when `when` (an Event) is
    given, writes a line to the script's standard input once it is set.
    Returns the CompletedProcess; fails on a hang or a crash."""
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=env)
    try:
        if when is not None:
            if not when.wait(HANG):
                proc.kill()
                pytest.fail("the script's request never arrived: "
                            + proc.communicate()[1])
            proc.stdin.write("go\n")
            proc.stdin.flush()
        out, err = proc.communicate(timeout=HANG)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"hung at exit; stdout {out!r}, stderr {err!r}")
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode}: {err}"
    assert "Fatal Python error" not in err, err
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture
def server():
    handler = FakeGenAuth()
    with RawServer(handler) as srv:
        yield srv


def test_a_call_in_a_finalizer_at_exit_writes_nothing_of_logging(server):
    # A script that imported logging (and never configured it), whose first
    # call is made by a finalizer as the interpreter ends: by then
    # sys.modules holds None for logging, as it does for a module an
    # application blocks. That was taken for the logging module, and every
    # such call wrote "AttributeError: 'NoneType' object has no attribute
    # 'getLogger'" twice (the token fetch's line and the call's) to stderr.
    out = run_script("""
        import os, sys, types
        import genauth_c
        import logging  # after genauth_c, which then binds its logger later

        class Finalizer:
            def __del__(self, genauth_c=genauth_c, url=sys.argv[1],
                        write=os.write):
                with genauth_c.ManagementClient(%r, %r, host=url) as c:
                    envelope = c.trigger_webhook("wh1")
                    batch = c.trigger_webhooks([{"webhook_id": "wh1"}])
                write(1, b"%%d %%d" %% (envelope["statusCode"],
                                        batch[0]["statusCode"]))

        # Freed as the interpreter clears sys.modules, after logging's entry.
        sys.modules["finalized_at_exit"] = types.ModuleType("holder")
        sys.modules["finalized_at_exit"].f = Finalizer()
    """ % (AK, SK), server.url)
    assert (out.returncode, out.stdout, out.stderr) == (0, "200 200", "")


def test_logging_blocked_in_sys_modules_is_logging_not_imported(server):
    # sys.modules["logging"] = None is how an application makes `import
    # logging` fail: the calls go on, silent, as before logging is imported.
    out = run_script("""
        import sys
        sys.modules["logging"] = None
        import genauth_c
        with genauth_c.ManagementClient(%r, %r, host=sys.argv[1]) as c:
            print(c.trigger_webhook("wh1")["statusCode"])
    """ % (AK, SK), server.url)
    assert (out.returncode, out.stdout, out.stderr) == (0, "200\n", "")


@pytest.mark.parametrize("line", ["token fetch", "POST"])
@pytest.mark.parametrize("batch", [False, True], ids=["call", "batch"])
def test_sys_exit_in_a_log_handler_during_a_call_exits(server, line, batch):
    # sys.exit() in a handler of the genauth_c logger ends the script with
    # its status, as from a line any Python code logs. On the token
    # fetch's line, which the core writes in the middle of the call (it
    # cannot end the call there), the SystemExit was reported as the
    # handler's failure ("Exception ignored in: <Logger genauth_c>") and
    # dropped: the script went on, and exited 0.
    out = run_script("""
        import logging, sys
        import genauth_c

        class Exits(logging.Handler):
            def emit(self, record):
                if record.getMessage().startswith(sys.argv[2]):
                    sys.exit(3)

        logger = logging.getLogger("genauth_c")
        logger.setLevel(logging.DEBUG)
        logger.addHandler(Exits())
        c = genauth_c.ManagementClient(%r, %r, host=sys.argv[1])
        if sys.argv[3] == "batch":
            c.trigger_webhooks([{"webhook_id": "wh1"}] * 3)
        else:
            c.trigger_webhook("wh1")
        for _ in range(2):  # the loop's back edge: Python's next check
            pass
        print("went on")
    """ % (AK, SK), server.url, line, "batch" if batch else "call")
    assert (out.returncode, out.stdout, out.stderr) == (3, "", "")
