"""The command line: ``python -m genauth_c.emulator`` (and ``genauth-c emulator``).

Serves until interrupted (Ctrl-C or SIGTERM; exit status 0). At start it
prints the URL on its first line, then the credentials it accepts (the secret
only when it is the default or was on the command line, where it is no
secret).

The key secret it accepts comes from the environment variable
GENAUTH_EMULATOR_ACCESS_KEY_SECRET, which other users of the machine cannot
read, or from --access-key-secret, which they can (ps, /proc/PID/cmdline),
else it is SK. Not GENAUTH_ACCESS_KEY_SECRET, the client's: a shell holding
a real secret there would have the emulator accept it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType
from typing import TextIO

from ..cli import discard_stdout, positive_float
from .app import Emulator
from .constants import DEFAULT_USERPOOL_ID, FORM_CONTENT_TYPE, JSON_CONTENT_TYPE

__all__ = ["main", "build_parser", "banner", "SECRET_VARIABLE"]

SECRET_VARIABLE = "GENAUTH_EMULATOR_ACCESS_KEY_SECRET"
DEFAULT_SECRET = "SK"


def _port(text: str) -> int:
    """A TCP port, 0 for any free one: bind() raises OverflowError outside."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return value


def _unsendable(value: str) -> str | None:
    """Why no client could send `value` as a key (ManagementClient refuses
    it), or None. Never quotes it: it may be a secret."""
    if not value:
        return "empty"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8, as os.environ and argv read them
        return "not UTF-8 text"
    if value != value.strip() or any(ord(c) < 0x20 or c == "\x7f" for c in value):
        return "begins or ends with a space, or holds a line end or other control character"
    return None


def _key(text: str) -> str:
    """An argparse type: a key id or secret that a client can send."""
    reason = _unsendable(text)
    if reason:
        raise argparse.ArgumentTypeError(f"{reason}: no client could send it")
    return text


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog or "python -m genauth_c.emulator",
        description="A local GenAuth V3 management API (token and AK/SK signature authentication, "
        "both brands) that really delivers webhooks. For tests and demos: never expose it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=_port, default=0, help="port to listen on (0: any free port)")
    parser.add_argument("--access-key-id", type=_key, default="AK", help="the access key id it accepts")
    parser.add_argument(
        "--access-key-secret", type=_key, default=argparse.SUPPRESS, metavar="SECRET",
        help=f"the access key secret it accepts, visible to every user of the machine (ps, "
        f"/proc/PID/cmdline): prefer the environment variable {SECRET_VARIABLE} (without "
        f"either: {DEFAULT_SECRET})",
    )
    parser.add_argument("--token-lifetime", type=positive_float, default=7200, help="seconds a management token lives")
    parser.add_argument("--userpool-id", default=DEFAULT_USERPOOL_ID, help="the user pool id in tokens")
    parser.add_argument(
        "--webhook", action="append", default=[], metavar="ID=URL",
        help="register a webhook delivering JSON to URL (repeatable)",
    )
    parser.add_argument(
        "--form-webhook", action="append", default=[], metavar="ID=URL",
        help=f"register a webhook delivering {FORM_CONTENT_TYPE} to URL (repeatable)",
    )
    parser.add_argument("--webhook-timeout", type=positive_float, default=5.0, help="seconds to wait for a subscriber")
    parser.add_argument(
        "--delivery-brand", choices=("authing", "genauth"), default="authing",
        help="header names of deliveries: x-authing-* or x-genauth-*",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser


def _secret(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[str, str | None]:
    """The key secret to accept, and the variable it was read from (None:
    from the command line, or the default). An empty variable counts as
    unset; one the clients could not send is refused by its name, never
    quoting it."""
    given: str | None = getattr(args, "access_key_secret", None)
    if given is not None:
        return given, None
    value = os.environ.get(SECRET_VARIABLE, "")
    if not value:
        return DEFAULT_SECRET, None
    reason = _unsendable(value)
    if reason:
        parser.error(f"{SECRET_VARIABLE}: {reason} (set in the environment)")
    return value, SECRET_VARIABLE


def banner(emu: Emulator, secret_from: str | None = None) -> str:
    """What the command prints at start: the URL first, then what it accepts
    (the secret only by the variable it came from, when `secret_from` names one)."""
    secret = f"set by {secret_from}, not shown" if secret_from else emu.access_key_secret
    lines = [
        f"genauth-c emulator listening on {emu.url}",
        f"  access key id:     {emu.access_key_id}",
        f"  access key secret: {secret}",
        f"  user pool id:      {emu.userpool_id}",
        "  authentication:    Bearer tokens from POST /api/v3/get-management-token, or AK/SK "
        "signatures (schemes 'authing' with x-authing-*, 'GenAuth' with x-genauth-*)",
    ]
    for page in range(1, 1000):
        hooks = emu.store.page(page, 50)["list"]
        lines += [f"  webhook:           {h['webhookId']} -> {h['url']} ({h['contentType']})" for h in hooks]
        if len(hooks) < 50:
            break
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


def main(argv: list[str] | None = None, *, prog: str | None = None, out: TextIO | None = None) -> int:
    """Serve until interrupted; returns the exit status (2 for bad usage, via argparse)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    secret, secret_from = _secret(parser, args)
    emu = Emulator(
        args.access_key_id,
        secret,
        host=args.host,
        port=args.port,
        token_lifetime=args.token_lifetime,
        userpool_id=args.userpool_id,
        webhook_timeout=args.webhook_timeout,
        delivery_brand=args.delivery_brand,
        verbose=args.verbose,
    )
    for specs, content_type in ((args.webhook, JSON_CONTENT_TYPE), (args.form_webhook, FORM_CONTENT_TYPE)):
        for spec in specs:
            webhook_id, sep, url = spec.partition("=")
            if not sep or not webhook_id or not url:
                parser.error(f"expected ID=URL, got {spec!r}")
            emu.add_webhook(webhook_id, url, content_type)
    done = threading.Event()
    previous = None
    in_main_thread = threading.current_thread() is threading.main_thread()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        done.set()

    if in_main_thread:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        try:
            emu.start()
        except OSError as exc:
            print(f"genauth-c emulator: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 1
        try:
            print(banner(emu, secret_from), file=out or sys.stdout, flush=True)
        except OSError as exc:
            # A banner nobody can read (> /dev/full) leaves no one the URL:
            # a server no one can find is a failure, said in one line.
            print(f"genauth-c emulator: cannot write the banner to stdout: {exc.strerror}", file=sys.stderr)
            if out is None:
                discard_stdout()
            return 1
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
    return 0
