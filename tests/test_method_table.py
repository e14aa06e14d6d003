"""Every API method has every piece README.md's "A new endpoint" paragraph
lists. ManagementClient's method table (src/binding/methods.c, API_METHODS,
with each endpoint's HTTP method and path from src/core/endpoints.c) comes to
Python as genauth_c._core._API_METHODS; each test below checks one piece
against it and names the method and the piece that is missing or differs.
Fast and offline: it sends nothing."""
import argparse
import ast
import inspect
import pathlib

import pytest

import genauth_c
from genauth_c import ManagementClient, cli
from genauth_c.emulator.dispatch import ROUTES

# (name, op, HTTP method, path, ((parameter, required, keyword_only), ...))
ROWS = genauth_c._core._API_METHODS
NAMES = [row[0] for row in ROWS]

# Methods with no command of genauth_c/cli.py, each with the reason.
CLI_EXEMPT: dict[str, str] = {}

P = inspect.Parameter


def expected_params(params):
    """The table's parameters as (name, kind, default): optional ones
    default to None, as the parser leaves them out when None."""
    return [(name, P.KEYWORD_ONLY if keyword_only else P.POSITIONAL_OR_KEYWORD,
             P.empty if required else None)
            for name, required, keyword_only in params]


def described(params):
    return "(" + ", ".join(
        name + ("" if default is P.empty else f"={default!r}")
        + (" [keyword-only]" if kind is P.KEYWORD_ONLY else "")
        for name, kind, default in params) + ")"


def test_every_op_has_a_row_in_both_tables():
    for i, (name, op, method, path, _params) in enumerate(ROWS):
        assert name is not None and op == i, (
            f"GENAUTH_OP value {i}: no row in src/binding/methods.c's API_METHODS")
        assert method in ("GET", "POST") and path and path.startswith("/api/v3/"), (
            f"{name}: no row in src/core/endpoints.c (HTTP method {method!r}, path {path!r})")
    assert len(set(NAMES)) == len(NAMES)


# ---- the stubs ---------------------------------------------------------------

def _stub_classes():
    stub = pathlib.Path(genauth_c.__file__).with_suffix(".pyi")
    tree = ast.parse(stub.read_text(encoding="utf-8"))
    return {node.name: {f.name: f for f in node.body
                        if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
            for node in tree.body if isinstance(node, ast.ClassDef)}


STUBS = _stub_classes()


def _stub_params(fn):
    """A stub's parameters after self, as (name, kind, default): a default
    None as None, any other as its source text."""
    def default(node):
        if node is None:
            return P.empty
        if isinstance(node, ast.Constant) and node.value is None:
            return None
        return ast.unparse(node)

    a = fn.args
    assert not a.posonlyargs and a.vararg is None and a.kwarg is None, fn.name
    positional = a.args[1:]
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    return ([(arg.arg, P.POSITIONAL_OR_KEYWORD, default(d))
             for arg, d in zip(positional, defaults)]
            + [(arg.arg, P.KEYWORD_ONLY, default(d))
               for arg, d in zip(a.kwonlyargs, a.kw_defaults)])


@pytest.mark.parametrize("row", ROWS, ids=NAMES)
@pytest.mark.parametrize("cls,kind", [("ManagementClient", ast.FunctionDef),
                                      ("AsyncManagementClient", ast.AsyncFunctionDef)])
def test_a_stub_with_the_same_parameters(row, cls, kind):
    name, params = row[0], row[4]
    fn = STUBS[cls].get(name)
    assert fn is not None, f"{name}: no stub in genauth_c/__init__.pyi's class {cls}"
    assert isinstance(fn, kind), (
        f"{name}: genauth_c/__init__.pyi's {cls}.{name} must be "
        f"{'an async def' if kind is ast.AsyncFunctionDef else 'a def'}")
    want, got = expected_params(params), _stub_params(fn)
    assert got == want, (
        f"{name}: genauth_c/__init__.pyi's {cls}.{name} takes {described(got)}; "
        f"its parameter list in src/binding/methods.c has {described(want)}")


# ---- the docstring -------------------------------------------------------------

@pytest.mark.parametrize("row", ROWS, ids=NAMES)
def test_a_docstring_whose_first_line_is_its_signature(row):
    name, params = row[0], row[4]
    method = getattr(ManagementClient, name)
    assert method.__text_signature__ is not None and method.__doc__, (
        f"{name}: its docstring ({name}_doc in src/binding/methods.c) does not begin "
        f"with its signature line, '{name}($self, ...)\\n--\\n\\n'")
    got = [(p.name, p.kind, p.default)
           for p in list(inspect.signature(method).parameters.values())[1:]]
    want = expected_params(params)
    assert got == want, (
        f"{name}: the signature line of its docstring ({name}_doc) says {described(got)}; "
        f"its parameter list in src/binding/methods.c has {described(want)}")


# ---- the emulator and the wire table -------------------------------------------

@pytest.mark.parametrize("row", ROWS, ids=NAMES)
def test_an_emulator_route(row):
    name, _op, method, path, _params = row
    route = ROUTES.get((method, path))
    assert route is not None, (
        f"{name}: no route for {method} {path} in genauth_c/emulator/dispatch.py's ROUTES")
    assert route.__name__ == name, (
        f"{name}: ROUTES sends {method} {path} to ApiHandler.{route.__name__}, "
        f"not ApiHandler.{name}")


@pytest.mark.parametrize("row", ROWS, ids=NAMES)
def test_a_row_of_the_wire_table(row):
    from test_webhook_api import WIRE
    name, _op, method, path, _params = row
    rows = [r for r in WIRE if r[0] == name]
    assert rows, f"{name}: no row of tests/test_webhook_api.py's WIRE table"
    for r in rows:
        assert (r[3], r[4]) == (method, path), (
            f"{name}: a row of tests/test_webhook_api.py's WIRE table expects {r[3]} {r[4]}; "
            f"src/core/endpoints.c has {method} {path}")


# ---- the command line ------------------------------------------------------------

class _Recorder:
    """A client whose every method records what it was called with."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        def method(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return {}
        return method


def _cli_commands():
    """{method name: [(the command's words, the keyword arguments it passed,
    how many it passed by position)]}: each command of cli.build_parser()
    run against a _Recorder, every option given a value (none read from a
    file: --secret-file is left out)."""
    found = {}

    def walk(parser, words):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if subs:
            for word, sub in subs[0].choices.items():
                walk(sub, words + [word])
            return
        run = parser.get_default("run")
        if run is None:
            return  # the emulator's command: no API method
        values = {a.dest: "x" for a in parser._actions if a.dest != "help"}
        values["secret_file"] = None
        client = _Recorder()
        run(client, argparse.Namespace(**values))
        ((name, args, kwargs),) = client.calls
        found.setdefault(name, []).append((" ".join(words), kwargs, len(args)))

    walk(cli.build_parser(), [])
    return found


CLI_COMMANDS = _cli_commands()


@pytest.mark.parametrize("row", ROWS, ids=NAMES)
def test_a_command_line_command(row):
    name, params = row[0], row[4]
    if name in CLI_EXEMPT:
        assert name not in CLI_COMMANDS, f"{name}: has a command; drop it from CLI_EXEMPT"
        return
    assert name in CLI_COMMANDS, (
        f"{name}: no command in genauth_c/cli.py (build_parser), and not in "
        f"tests/test_method_table.py's CLI_EXEMPT")
    names = [p[0] for p in params]
    npos = sum(not keyword_only for _, _, keyword_only in params)
    for words, kwargs, nargs in CLI_COMMANDS[name]:
        unknown = sorted(set(kwargs) - set(names[nargs:]))
        assert not unknown and nargs <= npos, (
            f"{name}: `genauth-c {words}` passes {unknown or f'{nargs} positional'}, "
            f"not parameters of {name}{tuple(names)}")


def test_the_command_line_calls_only_api_methods():
    assert set(CLI_COMMANDS) <= set(NAMES), set(CLI_COMMANDS) - set(NAMES)
