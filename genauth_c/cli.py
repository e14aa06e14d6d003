"""genauth-c's command line: ``genauth-c`` or ``python -m genauth_c``.

    genauth-c trigger WEBHOOK_ID [--body JSON|@FILE|-] [--headers JSON|@FILE|-]
    genauth-c webhooks list|get|create|update|delete|logs|events [options]
    genauth-c emulator [emulator options]

Credentials come from the environment (GENAUTH_ACCESS_KEY_ID,
GENAUTH_ACCESS_KEY_SECRET, GENAUTH_HOST; AUTHING_* with --brand authing), or
from --access-key-id with the secret read from --access-key-secret-file or
asked for at a prompt: never from the command line, where other users of the
machine could read it.

The answer is the response envelope as JSON on stdout, indented on a
terminal and compact when piped. Exit status: 0 when statusCode is 200, 1 for
a business error (the envelope is still printed; a token endpoint throttled
or failing, 429 or 5xx, likewise), 2 for bad usage, 3 for a transport or
decode failure, 4 for an authentication failure (the token endpoint refused
the keys, or the envelope's statusCode is 401), 5 when the
answer cannot be written to stdout, 130 on Ctrl-C, 141 when stdout's reader
has gone (| head). Errors go to stderr, one line each.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO, NoReturn

PROG = "genauth-c"
EXIT_OK, EXIT_BUSINESS, EXIT_USAGE, EXIT_TRANSPORT, EXIT_AUTH, EXIT_OUTPUT = 0, 1, 2, 3, 4, 5
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 130, 141  # as a shell reports SIGINT, SIGPIPE


class UsageError(Exception):
    """Bad input found before anything was sent: exit status 2."""


# ---- reading arguments -------------------------------------------------------

MAX_SECRET_FILE_BYTES = 64 * 1024  # a key secret is some dozens of bytes
MAX_JSON_BYTES = 16 * 1024 * 1024  # a payload, as the default max_response_bytes


def _read_source(source: str | None, what: str, limit: int, line: bool = False) -> bytes:
    """The bytes of file `source`, or of stdin when it is None (only its
    first line, with `line`); refused when there are more than `limit` of
    them, of which no more than one beyond are read, so that /dev/zero or a
    wrong file cannot hang us or fill the memory."""
    if source is None:
        if sys.stdin is None:  # started with stdin closed (<&-)
            raise UsageError(f"{what}: cannot read stdin: it is closed")
        stream: BinaryIO | None = getattr(sys.stdin, "buffer", None)
        try:
            if stream is None:  # a text stream put in its place
                read = sys.stdin.readline if line else sys.stdin.read
                data = read(limit + 1).encode("utf-8", "surrogateescape")
            else:
                data = (stream.readline if line else stream.read)(limit + 1)
        except OSError as e:
            raise UsageError(f"{what}: cannot read stdin: {e.strerror}") from None
    else:
        try:
            with open(source, "rb") as f:
                data = f.read(limit + 1)
        except OSError as e:
            raise UsageError(f"{what}: cannot read {source}: {e.strerror}") from None
    if len(data) > limit:
        raise UsageError(f"{what}: {'stdin' if source is None else source} is larger than "
                         f"{limit} bytes")
    return data


def _decode(data: bytes, what: str, source: str) -> str:
    """UTF-8 text, a byte order mark dropped (editors on Windows write one).
    The error names the offset only: the bytes may be a secret's."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UsageError(f"{what}: {source} is not UTF-8 text (byte {e.start})") from None


# The option that read stdin ('-'), if one did: without a terminal the
# secret's prompt reads stdin too, and would find it spent.
_stdin_taken_by: str | None = None


def _read_text(spec: str, what: str) -> tuple[str, str]:
    """`spec` itself, or the text of @FILE, or stdin for '-'; and what the
    text came from, for errors."""
    global _stdin_taken_by
    if spec == "-":
        _stdin_taken_by = what
        return _decode(_read_source(None, what, MAX_JSON_BYTES), what, "stdin"), "stdin"
    if spec.startswith("@"):
        return _decode(_read_source(spec[1:], what, MAX_JSON_BYTES), what, spec[1:]), spec[1:]
    return spec, "the value"


def json_object(what: str) -> Callable[[str], dict[str, Any]]:
    """An argparse type: a JSON object given inline, as @FILE or as '-'."""
    def parse(spec: str) -> dict[str, Any]:
        text, source = _read_text(spec, what)
        if not text.strip():
            raise UsageError(f"{what}: {source} is empty")
        try:
            value = json.loads(text)
        except ValueError as e:
            raise UsageError(f"{what}: not valid JSON: {e}") from None
        except RecursionError:
            raise UsageError(f"{what}: nested too deeply") from None
        if not isinstance(value, dict):
            raise UsageError(f"{what}: expected a JSON object, got {type(value).__name__}")
        return value
    return parse


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


SECRET_FILE_OPTIONS = ("--access-key-secret-file", "--secret-file")


def _refuse_secrets_on_argv(argv: Sequence[str]) -> None:
    """A secret typed on the command line is refused by the option's name,
    before anything else reads it: argv is readable by every user of the
    machine (ps), and the secret must not be echoed in an error either."""
    for arg in argv:
        if arg == "--":
            break
        name = arg.split("=", 1)[0]
        if not name.startswith("--") or name in SECRET_FILE_OPTIONS:
            continue
        if any(word in name.lower() for word in ("secret", "token", "password")):
            raise UsageError(
                f"{name}: secrets are not taken on the command line, where other users of the "
                "machine can read them: use --access-key-secret-file or --secret-file, the "
                "environment, or the prompt")


def _names(values: list[str] | None, option: str) -> list[str] | None:
    """--events a --events b,c -> ['a', 'b', 'c'] (None when not given).
    Given but naming nothing (--webhook-ids "$IDS" with $IDS empty) is
    refused: sent, it would delete nothing and exit 0 as if it had."""
    if values is None:
        return None
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    if not names:
        raise UsageError(f"{option}: names nothing (empty, or only commas)")
    return names


def _read_secret_file(path: str | None, what: str) -> str:
    """The secret in file `path` (the first line of stdin when None): its
    one line, without the line end (LF or CRLF) and without a byte order
    mark. Errors never quote the file."""
    source = "stdin" if path is None else path
    data = _read_source(path, what, MAX_SECRET_FILE_BYTES, line=path is None)
    secret = _decode(data, what, source).rstrip("\r\n")
    if path is None and not secret:
        return ""  # the end of stdin: the caller says no secret was given
    if not secret.strip():
        raise UsageError(f"{what}: {source} is empty")
    if "\n" in secret or "\r" in secret:
        raise UsageError(f"{what}: {source} holds more than one line")
    return _no_space_at_an_end(secret, what, source)


def _no_space_at_an_end(secret: str, what: str, source: str) -> str:
    """`secret`, refused when it begins or ends with a space: an editor's or
    a paste's slip, never part of a key, refused as the client refuses it in
    a variable rather than sent and refused as a wrong key."""
    if secret != secret.strip(" "):
        raise UsageError(f"{what}: {source} begins or ends with a space")
    return secret


# ---- the parser --------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (after the usage), exit status 2;
    subcommands' parsers are of this class too. No abbreviations: with them,
    a mistaken --access-key-secret SECRET would be taken for
    --access-key-secret-file and the secret shown as a file name."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        if sys.stderr is not None:
            self.print_usage(sys.stderr)
        sys.exit(_fail(EXIT_USAGE, f"error: {message}"))

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        # argparse's own message quotes the value; the word taken for a
        # command may be the value of an option it does not know
        # (--access-key-secret SECRET trigger ...): never echoed.
        if action.choices is not None and value not in action.choices:
            choices = ", ".join(repr(choice) for choice in action.choices)
            raise argparse.ArgumentError(action, f"invalid choice (choose from {choices})")


def _connection_options() -> _Parser:
    """The options every API command takes, accepted before or after it."""
    p = _Parser(add_help=False, argument_default=argparse.SUPPRESS)
    g = p.add_argument_group("connection")
    g.add_argument("--access-key-id", metavar="ID",
                   help="the key id (default: $GENAUTH_ACCESS_KEY_ID, or $AUTHING_ACCESS_KEY_ID with --brand authing)")
    g.add_argument("--access-key-secret-file", metavar="PATH",
                   help="a file holding the key secret; without it, the secret comes from "
                        "$GENAUTH_ACCESS_KEY_SECRET ($AUTHING_ACCESS_KEY_SECRET with --brand "
                        "authing) or, with --access-key-id, a prompt (never from the command line)")
    g.add_argument("--host", metavar="URL", help="the API's base URL (default: $GENAUTH_HOST, or the brand's)")
    g.add_argument("--timeout", type=positive_float, metavar="SECONDS", help="limit for the whole call (default 10)")
    g.add_argument("--brand", choices=["genauth", "authing"], help="default genauth")
    g.add_argument("--auth", choices=["token", "signature"], help="default token")
    g.add_argument("--ca-bundle", metavar="PATH", help="trust the CA certificates in this PEM file")
    return p


def _webhook_fields(p: argparse.ArgumentParser, creating: bool) -> None:
    p.add_argument("--name", required=creating)
    p.add_argument("--url", required=creating)
    p.add_argument("--events", action="append", required=creating, metavar="EVENT[,EVENT...]",
                   help="event names (repeatable, or a comma-separated list)")
    p.add_argument("--content-type", choices=["application/json", "application/x-www-form-urlencoded"],
                   default="application/json" if creating else None,
                   help="default application/json" if creating else None)
    enabled = p.add_mutually_exclusive_group()
    enabled.add_argument("--enabled", dest="enabled", action="store_const", const=True, default=None)
    enabled.add_argument("--disabled", dest="enabled", action="store_const", const=False)
    p.add_argument("--secret-file", metavar="PATH", help="a file holding the webhook's shared secret")
    p.add_argument("--retry-config", type=json_object("--retry-config"), metavar="JSON|@FILE",
                   help='e.g. {"enabled": true, "count": 3}')


class _Version(argparse.Action):
    """--version: the package's and libcurl's, for a bug report. The C
    extension is imported only when asked (the emulator's command does
    without it)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the version of genauth-c and of its libcurl, and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        import genauth_c
        parser.exit(_write_answer(
            lambda out: f"{PROG} {genauth_c.__version__} (libcurl {genauth_c.curl_version})"))


def build_parser() -> _Parser:
    common = _connection_options()
    parser = _Parser(
        prog=PROG, parents=[common],
        description="GenAuth's V3 management API from the command line. Prints the response "
                    "envelope as JSON.",
        epilog="Exit status: 0 statusCode 200, 1 business error, 2 bad usage, "
               "3 transport or decode failure, 4 authentication failure, 5 stdout not writable, "
               "130 interrupted, 141 stdout's reader gone.")
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    trigger = commands.add_parser("trigger", parents=[common], help="trigger a webhook once")
    trigger.add_argument("webhook_id", metavar="WEBHOOK_ID")
    trigger.add_argument("--body", dest="request_body", type=json_object("--body"),
                         metavar="JSON|@FILE|-",
                         help="requestBody: a JSON object, inline, from a file, or '-' for stdin")
    trigger.add_argument("--headers", dest="request_headers", type=json_object("--headers"),
                         metavar="JSON|@FILE|-", help="requestHeaders: a JSON object")
    trigger.set_defaults(run=_call("trigger_webhook", "webhook_id", "request_headers",
                                   "request_body"))

    webhooks = commands.add_parser("webhooks", parents=[common],
                                   help="list, read, create, change, delete webhooks; "
                                        "their delivery logs; the event list")
    actions = webhooks.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = actions.add_parser("list", parents=[common], help="list_webhooks")
    p.add_argument("--page", type=positive_int)
    p.add_argument("--limit", type=positive_int)
    p.set_defaults(run=_call("list_webhooks", "page", "limit"))
    p = actions.add_parser("get", parents=[common], help="get_webhook")
    p.add_argument("--webhook-id", required=True)
    p.set_defaults(run=_call("get_webhook", "webhook_id"))
    p = actions.add_parser("create", parents=[common], help="create_webhook")
    _webhook_fields(p, creating=True)
    p.set_defaults(run=_call("create_webhook", "content_type", "events", "url", "name", "enabled",
                             "secret", "retry_config"))
    p = actions.add_parser("update", parents=[common], help="update_webhook")
    p.add_argument("--webhook-id", required=True)
    _webhook_fields(p, creating=False)
    p.set_defaults(run=_call("update_webhook", "webhook_id", "name", "url", "events", "content_type",
                             "enabled", "secret", "retry_config"))
    p = actions.add_parser("delete", parents=[common], help="delete_webhook")
    p.add_argument("--webhook-ids", action="append", required=True, metavar="ID[,ID...]",
                   help="webhook ids (repeatable, or a comma-separated list)")
    p.set_defaults(run=_call("delete_webhook", "webhook_ids"))
    p = actions.add_parser("logs", parents=[common], help="get_webhook_logs")
    p.add_argument("--webhook-id", required=True)
    p.add_argument("--page", type=positive_int)
    p.add_argument("--limit", type=positive_int)
    p.set_defaults(run=_call("get_webhook_logs", "webhook_id", "page", "limit"))
    p = actions.add_parser("events", parents=[common], help="get_webhook_event_list")
    p.set_defaults(run=_call("get_webhook_event_list"))

    commands.add_parser(
        "emulator", add_help=False, help="serve the local GenAuth emulator (as python -m genauth_c.emulator)")
    return parser


# ---- running -----------------------------------------------------------------

def _call(method: str, *params: str) -> Callable[[Any, argparse.Namespace], Any]:
    """Runs client.<method>(**{param: the option's value}); options not given
    are left out, so the method's own defaults apply."""
    def run(client: Any, args: argparse.Namespace) -> Any:
        fn = getattr(client, method, None)
        if fn is None:
            raise UsageError(f"this genauth_c has no {method}()")
        kwargs: dict[str, Any] = {}
        for name in params:
            if name == "secret":
                path = getattr(args, "secret_file", None)
                # An empty path ("$UNSET") is refused by the read, not taken for no option.
                value: Any = _read_secret_file(path, "--secret-file") if path is not None else None
            elif name in ("events", "webhook_ids"):
                value = _names(getattr(args, name), "--" + name.replace("_", "-"))
            else:
                value = getattr(args, name)
            if value is not None:
                kwargs[name] = value
        return fn(**kwargs)
    return run


def _prompt_secret(prompt: str, variable: str) -> str:
    """getpass's answer at the terminal; without one, the first line of
    stdin, read as a secret file is, with no prompt: getpass
    would warn that the input may be echoed, where nothing echoes it, and
    leave its prompt on the line of the error that follows. '' at the end
    of input, or when there is no stdin either (started with <&-). Refused
    when a payload's '-' has read stdin already, naming it and `variable`,
    the other way to give the secret."""
    if not _has_terminal():
        if _stdin_taken_by is not None:
            raise UsageError(
                f"no access key secret given: without a terminal it is read from stdin, which "
                f"{_stdin_taken_by} - has taken; give it in --access-key-secret-file or "
                f"${variable}")
        if sys.stdin is None:
            return ""
        # As a secret file is read: a stdin with no line end (< /dev/zero)
        # must not fill the memory.
        return _read_secret_file(None, "access key secret")
    try:
        secret = getpass.getpass(prompt)
    except EOFError:
        return ""
    return _no_space_at_an_end(secret, "access key secret", "the prompt's answer")


def _has_terminal() -> bool:
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


def _client_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {name: getattr(args, name) for name in ("host", "timeout", "brand", "auth", "ca_bundle")
                               if hasattr(args, name)}
    key_id = getattr(args, "access_key_id", None)
    secret_file = getattr(args, "access_key_secret_file", None)
    if secret_file is not None and key_id is None:
        raise UsageError("--access-key-secret-file needs --access-key-id")
    if key_id is not None:
        options["access_key_id"] = key_id
        if secret_file is not None:
            options["access_key_secret"] = _read_secret_file(secret_file, "--access-key-secret-file")
        else:
            prefix = "AUTHING" if options.get("brand") == "authing" else "GENAUTH"
            # When the variable is set, the client reads (and checks) it.
            if not os.environ.get(f"{prefix}_ACCESS_KEY_SECRET"):
                secret = _prompt_secret(f"access key secret for {key_id}: ",
                                        f"{prefix}_ACCESS_KEY_SECRET")
                if not secret:
                    raise UsageError("no access key secret given")
                options["access_key_secret"] = secret
    return options


# Outside strings, json.dumps writes float('inf') as Infinity, which is not
# JSON; the decoder makes one of a number beyond a double (1e400).
_NON_FINITE = re.compile(r'"(?:[^"\\]+|\\.)*"|(-?Infinity|NaN)')
_FINITE = {"Infinity": "1e999", "-Infinity": "-1e999", "NaN": "null"}

# The decoder takes up to 1000 levels; json.dumps needs a frame or two for
# each (more than the default limit allows, with the caller's frames).
_DUMPS_RECURSION = 2 * 1000 + 500


def _envelope_json(envelope: Any, indent: bool, encoding: str | None = None) -> str:
    """`envelope` as JSON text that `encoding` can carry: non-ASCII as is
    when it can, as \\u escapes (the same JSON) when not, or when a string
    holds a lone surrogate; a number beyond a double as 1e999."""
    layout: dict[str, Any] = {"indent": 2} if indent else {"separators": (",", ":")}

    def dumps(ensure_ascii: bool) -> str:
        try:
            return json.dumps(envelope, ensure_ascii=ensure_ascii, allow_nan=False, **layout)
        except ValueError:  # a non-finite float
            return _NON_FINITE.sub(lambda m: _FINITE[m[1]] if m[1] else m[0],
                                   json.dumps(envelope, ensure_ascii=ensure_ascii, **layout))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, _DUMPS_RECURSION))
    try:
        text = dumps(ensure_ascii=False)
        try:
            text.encode(encoding or "utf-8")
        except UnicodeEncodeError:
            text = dumps(ensure_ascii=True)
    finally:
        sys.setrecursionlimit(limit)
    return text


def _print_envelope(envelope: Any) -> int:
    """Writes the envelope to stdout: EXIT_OK, or EXIT_OUTPUT when it cannot
    (a broken pipe is left to main)."""
    return _write_answer(lambda out: _envelope_json(
        envelope, indent=out.isatty(), encoding=getattr(out, "encoding", None)))


def _write_answer(text: Callable[[Any], str]) -> int:
    """Writes text(stdout) and a line end to stdout: EXIT_OK, or EXIT_OUTPUT
    when it cannot (a broken pipe is left to main)."""
    out = sys.stdout
    if out is None:  # started with stdout closed (>&-)
        return _fail(EXIT_OUTPUT, "cannot write the answer: stdout is closed")
    try:
        out.write(text(out) + "\n")
        out.flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        # What the buffer still holds would fail again at exit (Python
        # 3.13 then exits 120).
        discard_stdout()
        return _fail(EXIT_OUTPUT, f"cannot write the answer to stdout: {e.strerror}")
    return EXIT_OK


# Control characters that are not whitespace (which split() takes out):
# ESC sequences in a message the server chose would be run by a terminal.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _fail(status: int, message: str) -> int:
    # One line, whatever the message holds, with no control character;
    # none when stderr is closed, the status still says what happened.
    if sys.stderr is not None:
        try:
            sys.stderr.write(f"{PROG}: {_CONTROL.sub('?', ' '.join(message.split()))}\n")
            sys.stderr.flush()
        except OSError:
            pass
    return status


def _withheld(e: Any) -> dict[str, Any]:
    """What is printed of an answer that quoted the credential the request
    was sent with (the APIError says so, on stderr): its statusCode and
    apiCode, still JSON on stdout for the scripts reading it."""
    _fail(EXIT_OK, str(e))
    envelope = {"statusCode": e.status_code}
    if e.api_code is not None:
        envelope["apiCode"] = e.api_code
    return envelope


def _failing(status: Any) -> bool:
    """Whether an HTTP status or a statusCode says throttled (429) or
    failing (5xx). The token endpoint's statusCode is whatever its JSON
    holds (a str, or none: a gateway's 502 page), so it may be no int."""
    return type(status) is int and (status == 429 or status >= 500)


def _exit_status(envelope: Any) -> int:
    code = envelope.get("statusCode") if isinstance(envelope, dict) else None
    if code == 200:
        return EXIT_OK
    return EXIT_AUTH if code == 401 else EXIT_BUSINESS


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return _fail(EXIT_INTERRUPTED, "interrupted")
    except BrokenPipeError:
        # The reader of stdout left (| head -c 1): end quietly, with the
        # status of a program SIGPIPE ends.
        discard_stdout()
        return EXIT_BROKEN_PIPE


def discard_stdout() -> None:
    """Point stdout at /dev/null once a write to it failed: Python flushes
    it again at exit, and what its buffer still holds would fail there
    too, printed as 'Exception ignored ...'."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError):  # stdout is no file (in-process use)
        pass


def _main(argv: Sequence[str] | None) -> int:
    global _stdin_taken_by
    _stdin_taken_by = None  # main() may run more than once in a process
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["emulator"]:
        # Everything after it is the emulator's own command line.
        from genauth_c.emulator import main as serve
        return serve(argv[1:], prog=f"{PROG} emulator")
    parser = build_parser()
    try:
        _refuse_secrets_on_argv(argv)
        args, extra = parser.parse_known_args(argv)
    except UsageError as e:  # raised by an argument's type
        return _fail(EXIT_USAGE, f"error: {e}")
    if args.command == "emulator":  # reached past options of the API commands
        parser.error("emulator comes first, followed by its own options: "
                     f"{PROG} emulator [--port PORT ...]")
    if extra:
        # Named, never echoed: a value typed by mistake may be a secret
        # (--access-key-secret SECRET).
        names = sorted({a.split("=", 1)[0] for a in extra if a.startswith("-")})
        parser.error("unrecognized arguments" + (": " + " ".join(names) if names else ""))

    import genauth_c  # the C extension: only for the commands that need it

    options: dict[str, Any] = {}
    try:
        options = _client_options(args)
        # raise_for_status: so that an answer that quotes the credential
        # the request was sent with comes as an APIError without it, not as
        # an envelope to print (the token, which the user never sees
        # otherwise, into a terminal or a CI log).
        client = genauth_c.ManagementClient(raise_for_status=True, **options)
    except UsageError as e:
        return _fail(EXIT_USAGE, f"error: {e}")
    except TypeError as e:
        # Every option here has its type: a TypeError is a key missing from
        # the environment (--access-key-id always comes with its secret).
        # The client names the variables; this adds the command line's way.
        hint = ("" if "access_key_id" in options else
                "; or pass --access-key-id ID, its secret from "
                "--access-key-secret-file PATH or a prompt")
        return _fail(EXIT_USAGE, f"error: {e}{hint}")
    except ValueError as e:  # a bad option, a bad variable
        return _fail(EXIT_USAGE, f"error: {e}")
    with client:
        try:
            envelope = args.run(client, args)
        except UsageError as e:
            return _fail(EXIT_USAGE, f"error: {e}")
        except genauth_c.APIError as e:
            envelope = e.response if e.response is not None else _withheld(e)
        except genauth_c.AuthError as e:
            if not _failing(e.status_code) and not _failing(e.http_status):
                return _fail(EXIT_AUTH, f"authentication failed: {e}")
            # Throttled or failing, the token endpoint refused no keys: a
            # script reading 4 would stop retrying and check its
            # credentials. Its envelope, as for the API's own answer with
            # that statusCode; stderr says whose answer it is.
            if e.response is None:
                envelope = _withheld(e)  # says so on stderr
            else:
                envelope = e.response
                _fail(EXIT_OK, str(e))
        except (genauth_c.TransportError, genauth_c.DecodeError) as e:
            return _fail(EXIT_TRANSPORT, f"{type(e).__name__}: {e}")
        except (TypeError, ValueError) as e:  # refused before anything was sent
            return _fail(EXIT_USAGE, f"error: {e}")
    status = _print_envelope(envelope)
    return status if status != EXIT_OK else _exit_status(envelope)


if __name__ == "__main__":
    sys.exit(main())
