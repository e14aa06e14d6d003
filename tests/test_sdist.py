"""The source distribution, as a packager or `pip install
genauth_c-0.1.0.tar.gz` meets it: made on a machine without the C libraries,
carrying what building needs and nothing else, built into a wheel that
installs the package, its stubs, the emulator and the command line, and
uninstalled without a trace. Everything is built offline, with the tests' own
setuptools; and a build that lacks the C libraries or Python's headers says
which Debian packages to install."""
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import zipfile

import pytest

from packaging_env import (ROOT, fresh_copy, make_env, not_under_sanitizer,
                           venv_with_wheel)

pytestmark = [pytest.mark.slow, not_under_sanitizer]

# pkg-config then finds no .pc file, as on a machine without the -dev packages.
NO_LIBS = {"PKG_CONFIG_LIBDIR": "/nonexistent", "PKG_CONFIG_PATH": ""}
LIB_DEBS = "libcurl4-openssl-dev libcjson-dev libssl-dev"


def build_env(**extra):
    env = make_env(**extra)
    env.pop("GENAUTH_LIMITED_API", None)   # the default build: abi3
    return env


def tracked():
    return subprocess.run(["git", "-C", ROOT, "ls-files"], check=True,
                          capture_output=True, text=True).stdout.split()


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """A copy of the tracked files, dirtied as a working folder gets: an
    extension built in place, build/ and a virtual environment."""
    root = tmp_path_factory.mktemp("checkout")
    fresh_copy(root)
    for dirt in ("genauth_c/_core.abi3.so",
                 "genauth_c/_core.cpython-311-x86_64-linux-gnu.so",
                 "build/lib/genauth_c/_core.abi3.so", ".venv/bin/python",
                 "bench/.venv/bin/python", "src/core/client.o"):
        os.makedirs(root / os.path.dirname(dirt), exist_ok=True)
        (root / dirt).write_bytes(b"")
    return root


@pytest.fixture(scope="module")
def sdist(checkout, tmp_path_factory):
    out = tmp_path_factory.mktemp("sdist")
    r = subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d",
                        str(out)], cwd=checkout, env=build_env(**NO_LIBS),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    (path,) = out.iterdir()
    return str(path)


def test_sdist_is_made_without_the_c_libraries_and_carries_what_building_needs(
        sdist):
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    files = {n for n in names if not any(m.startswith(n + "/") for m in names)}
    needed = {f for f in tracked()
              if f.startswith(("src/core/", "src/binding/", "genauth_c/"))
              or f in ("setup.py", "pyproject.toml", "README.md", "LICENSE",
                       "MANIFEST.in")}
    assert needed - files == set()
    assert any(f.endswith(".h") for f in needed)
    assert {"genauth_c/py.typed", "genauth_c/__init__.pyi",
            "genauth_c/emulator/__init__.py"} <= files
    # Only what setuptools writes beside them: no tests, build products,
    # environments or bench results.
    extra = {f for f in files - needed
             if f not in ("PKG-INFO", "setup.cfg")
             and not f.startswith("genauth_c.egg-info/")}
    assert extra == set()


@pytest.fixture(scope="module")
def wheel_from_sdist(sdist, tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel-from-sdist")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-index",
         "--no-deps", "--no-build-isolation", "--disable-pip-version-check",
         "-w", str(out), sdist],
        env=build_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    (path,) = out.iterdir()
    return str(path)


def test_wheel_from_the_sdist_has_the_tags_files_and_metadata(
        wheel_from_sdist):
    name = os.path.basename(wheel_from_sdist)
    assert re.fullmatch(r"genauth_c-[0-9.]+-cp311-abi3-linux_x86_64\.whl",
                        name), name
    whl = zipfile.ZipFile(wheel_from_sdist)
    files = whl.namelist()
    package = [f for f in files if not f.startswith("genauth_c-")]
    assert all(f.startswith("genauth_c/") for f in package), package
    assert not [f for f in package if f.endswith((".c", ".h", ".o"))
                or "/tests/" in f or "test_" in f], package
    assert [f for f in package if f.endswith(".so")] == [
        "genauth_c/_core.abi3.so"]
    meta = whl.read(next(f for f in files if f.endswith("/METADATA"))).decode()
    head = meta.split("\n\n", 1)[0]
    for field in ("Name: genauth_c", "Requires-Python: >=3.11",
                  "License-Expression: MIT",
                  "Description-Content-Type: text/markdown",
                  "Summary: ", "Project-URL: Source, ",
                  "Classifier: Typing :: Typed",
                  "Classifier: Programming Language :: Python :: 3 :: Only",
                  "Classifier: Programming Language :: Python :: "
                  "Implementation :: CPython"):
        assert field in head, head
    # Nothing is needed at run time, and no extra: the tests are not in the
    # wheel, and the Makefile installs their tools (PY_TEST_TOOLS).
    assert not re.findall(r"^(Requires-Dist|Provides-Extra): .*$", head, re.M)


def test_installed_from_the_sdist_it_runs_and_uninstalls_cleanly(
        wheel_from_sdist, tmp_path_factory, tmp_path):
    py = venv_with_wheel(sys.executable, wheel_from_sdist, tmp_path_factory)
    venv = os.path.dirname(os.path.dirname(py))
    check = subprocess.run([py, "-c", """if True:
        import importlib.metadata, os, genauth_c, genauth_c.emulator
        here = os.path.dirname(genauth_c.__file__)
        assert os.path.isfile(os.path.join(here, "py.typed"))
        assert os.path.isfile(os.path.join(here, "__init__.pyi"))
        assert importlib.metadata.version("genauth_c") == genauth_c.__version__
        print(genauth_c.__version__, genauth_c.curl_version)
        """], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
    version, curl = check.stdout.split()
    expected = f"genauth-c {version} (libcurl {curl})\n"
    for cmd in ([os.path.join(venv, "bin", "genauth-c"), "--version"],
                [py, "-m", "genauth_c", "--version"]):
        r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True,
                           timeout=120)
        assert (r.returncode, r.stdout) == (0, expected), r.stderr
    r = subprocess.run([py, "-m", "genauth_c.emulator", "--help"],
                       cwd=tmp_path, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr

    subprocess.run([py, "-m", "pip", "uninstall", "--yes", "--quiet",
                    "--disable-pip-version-check", "genauth_c"],
                   check=True, timeout=120)
    left = [os.path.join(d, n) for d, dirs, names in os.walk(venv)
            for n in dirs + names if "genauth" in n.lower()]
    assert left == []


def test_a_build_without_the_c_libraries_names_the_debian_packages(
        checkout, tmp_path):
    build = [sys.executable, "setup.py", "-q", "build_ext", "-b",
             str(tmp_path / "lib"), "-t", str(tmp_path / "tmp")]
    r = subprocess.run(build, cwd=checkout, env=build_env(**NO_LIBS),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "install the Debian packages: " + LIB_DEBS in r.stderr, r.stderr

    (tmp_path / "empty").mkdir()    # a PATH without pkg-config
    r = subprocess.run(build, cwd=checkout,
                       env=build_env(PATH=str(tmp_path / "empty")),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "pkg-config is missing; install the Debian packages: pkg-config " \
        + LIB_DEBS in r.stderr, r.stderr


def test_a_build_without_python_headers_names_python3_dev(checkout, tmp_path):
    # This Python as if installed without its headers: setuptools is told
    # that they are in a folder that does not exist.
    r = subprocess.run([sys.executable, "-c", f"""if True:
        import runpy, sys
        from setuptools._distutils import sysconfig
        sysconfig.get_python_inc = lambda *a, **k: "/nonexistent/include"
        sys.argv = ["setup.py", "-q", "build_ext", "-b", {str(tmp_path)!r},
                    "-t", {str(tmp_path)!r}]
        runpy.run_path("setup.py", run_name="__main__")
        """], cwd=checkout, env=build_env(), capture_output=True, text=True,
        timeout=300)
    assert r.returncode != 0
    version = "%d.%d" % sys.version_info[:2]
    assert "this Python's headers are missing" in r.stderr, r.stderr
    assert f"install the Debian package python3-dev (python{version}-dev" \
        in r.stderr, r.stderr


def test_the_version_is_written_once(tmp_path):
    # A release bumps GENAUTH_VERSION, which __version__, --version and the
    # sdk-version header show (test_wire): the package's version follows.
    fresh_copy(tmp_path)
    header = tmp_path / "src" / "core" / "genauth.h"
    text = header.read_text()
    assert '#define GENAUTH_VERSION "' in text
    header.write_text(re.sub(r'(#define GENAUTH_VERSION )"[^"]+"',
                             r'\1"9.8.7"', text))
    r = subprocess.run([sys.executable, "setup.py", "--version"],
                       cwd=tmp_path, env=build_env(), capture_output=True,
                       text=True, timeout=120)
    assert (r.returncode, r.stdout.strip()) == (0, "9.8.7"), r.stderr


def test_a_build_drops_the_extension_a_build_of_the_other_abi_left(tmp_path):
    # GENAUTH_LIMITED_API=0 pip install . left build/lib.*/genauth_c/
    # _core.cpython-311-*.so; the next abi3 wheel carried both files, and
    # CPython 3.11 imported the stale one. The same in place (make install).
    fresh_copy(tmp_path)
    limited = tmp_path / "build" / "lib" / "genauth_c"
    other = "_core" + sysconfig.get_config_var("EXT_SUFFIX")
    for folder in (limited, tmp_path / "genauth_c"):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / other).write_bytes(b"")
    for where in (["-b", str(limited.parent)], ["--inplace"]):
        r = subprocess.run([sys.executable, "setup.py", "-q", "build_ext",
                            "-t", str(tmp_path / "tmp"), *where],
                           cwd=tmp_path, env=build_env(), capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
    for folder in (limited, tmp_path / "genauth_c"):
        assert sorted(f.name for f in folder.glob("_core.*")) == [
            "_core.abi3.so"], folder


def test_a_module_deleted_from_the_package_leaves_the_build(tmp_path):
    # build/lib.* goes whole into the wheel (make wheel, pip install .):
    # setuptools copied genauth_c/ there but never removed a file.
    fresh_copy(tmp_path)
    lib = tmp_path / "lib"
    build = [sys.executable, "setup.py", "-q", "build_py", "-d", str(lib)]
    (tmp_path / "genauth_c" / "old_module.py").write_text("")
    (lib / "genauth_c" / "old_subpackage").mkdir(parents=True)
    (lib / "genauth_c" / "old_subpackage" / "__init__.py").write_text("")
    for _ in range(2):   # with old_module.py, then without it
        r = subprocess.run(build, cwd=tmp_path, env=build_env(),
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        (tmp_path / "genauth_c" / "old_module.py").unlink(missing_ok=True)
    package = {p.relative_to(lib).as_posix() for p in lib.rglob("*")
               if p.is_file()}
    assert [p for p in package if "/old_" in p] == []
    assert {"genauth_c/__init__.py", "genauth_c/__init__.pyi",
            "genauth_c/py.typed", "genauth_c/emulator/app.py"} <= package
