"""Build genauth_c._core: the C core (src/core) and its binding (src/binding).

libcurl, cJSON and libcrypto are found with pkg-config, and this Python's
headers are looked for, only when the extension is built: making an sdist,
or reading the metadata (pip's first step), needs neither. Strictness comes from
the environment: GENAUTH_WERROR=1 turns warnings into errors, and
GENAUTH_SANITIZE=address,undefined builds with those sanitizers.

The binding is built against the stable ABI of CPython 3.11 (the limited API,
Py_LIMITED_API=0x030B0000): one extension, and one wheel tagged cp311-abi3,
for every CPython from 3.11 on. GENAUTH_LIMITED_API=0 builds it against this
interpreter's full API instead (a cp3XX-cp3XX wheel).
"""
import os
import re
import shutil
import subprocess
import sys
from glob import glob

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

PACKAGES = {"libcurl": "libcurl4-openssl-dev", "libcjson": "libcjson-dev",
            "libcrypto": "libssl-dev"}


def core_version():
    """The one place the version is written is the C core's GENAUTH_VERSION:
    the module's __version__ and the sdk-version header the client sends
    come from it, so the wheel's and the sdist's version are read from it
    too (pyproject.toml lists version as dynamic)."""
    with open(os.path.join("src", "core", "genauth.h"), encoding="utf-8") as f:
        return re.search(r'^#define GENAUTH_VERSION "([^"]+)"$', f.read(),
                         re.M).group(1)


def pkg_config(*args):
    return subprocess.run(["pkg-config", *args], check=True, text=True,
                          capture_output=True).stdout.split()


def dependency_flags():
    if not shutil.which("pkg-config"):
        sys.exit("genauth_c: pkg-config is missing; install the Debian "
                 "packages: pkg-config " + " ".join(PACKAGES.values()))
    missing = [deb for pc, deb in PACKAGES.items()
               if subprocess.run(["pkg-config", "--exists", pc]).returncode]
    if missing:
        sys.exit("genauth_c: the C libraries are missing; install the Debian "
                 "packages: " + " ".join(missing)
                 + " (for example: apt-get install -y " + " ".join(missing)
                 + ")")
    return pkg_config("--cflags", *PACKAGES), pkg_config("--libs", *PACKAGES)


def check_python_headers(include_dirs):
    """Without Python.h the compiler stops at the first file with an error
    that names no package; say which one brings the headers instead."""
    if any(os.path.isfile(os.path.join(d, "Python.h")) for d in include_dirs):
        return
    version = "%d.%d" % sys.version_info[:2]
    sys.exit("genauth_c: this Python's headers are missing (no Python.h in "
             + ", ".join(include_dirs) + "); for Debian's python3 install "
             "the Debian package python3-dev (python" + version + "-dev for "
             "python" + version + "); a Python installed another way needs "
             "its development headers installed with it")


class BuildExt(build_ext):
    """Finds what compiling needs at build time, so that `setup.py sdist`
    and pip's metadata step work on a machine without the C libraries."""

    def build_extensions(self):
        check_python_headers(self.include_dirs)
        cflags, libs = dependency_flags()
        for ext in self.extensions:
            ext.extra_compile_args = cflags + ext.extra_compile_args
            ext.extra_link_args = libs + ext.extra_link_args
        super().build_extensions()

    # A build of the other ABI (GENAUTH_LIMITED_API=0 names the file
    # _core.cpython-3XX-*.so, the stable ABI _core.abi3.so) leaves its file
    # where this one goes: in build/lib.*, whose whole folder goes into the
    # wheel, and in place (--inplace, pip install -e). CPython 3.11 would
    # import the cpython-311 file before the abi3 one.
    def build_extension(self, ext):
        drop_other_abi(self.get_ext_fullpath(ext.name))
        super().build_extension(ext)

    def copy_extensions_to_source(self):
        build_py = self.get_finalized_command("build_py")
        for ext in self.extensions:
            package = ext.name.rpartition(".")[0]
            drop_other_abi(os.path.join(
                build_py.get_package_dir(package),
                os.path.basename(self.get_ext_filename(ext.name))))
        super().copy_extensions_to_source()


class BuildPy(build_py):
    """setuptools copies the package's files into build/lib.*, whose whole
    folder goes into the wheel, and never removes one: a module deleted
    from genauth_c/ stayed in every later wheel and pip install of this
    tree. The files and subpackages there that are no longer the
    package's are removed."""

    def run(self):
        super().run()
        keep = {os.path.abspath(f) for f in self.get_outputs()}
        packages = set(self.packages or ())
        for package in packages:
            folder = os.path.join(self.build_lib, *package.split("."))
            for name in os.listdir(folder) if os.path.isdir(folder) else ():
                path = os.path.abspath(os.path.join(folder, name))
                if os.path.isdir(path):
                    if (package + "." + name not in packages
                            and name != "__pycache__"):
                        shutil.rmtree(path)
                # The extension is build_ext's to keep or remove.
                elif not name.endswith(".so") and path not in keep:
                    os.remove(path)


def drop_other_abi(target):
    """Removes the files beside `target` (.../_core.abi3.so) that are the
    same extension built for another ABI."""
    folder, name = os.path.split(target)
    for stale in glob(os.path.join(folder, name.split(".")[0] + ".*.so")):
        if os.path.basename(stale) != name:
            os.remove(stale)


warnings = ["-Wall", "-Wextra", "-Wshadow", "-Wstrict-prototypes",
            "-Wmissing-prototypes", "-Wformat=2", "-Wno-missing-field-initializers"]
# Only PyInit__core is exported (PyMODINIT_FUNC marks it): the core's
# functions call each other directly, not through the PLT, and may be
# inlined, which a symbol another library could interpose forbids.
extra_compile = ["-std=c11", "-D_GNU_SOURCE", "-O2", "-fvisibility=hidden",
                 *warnings]
extra_link = []
if os.environ.get("GENAUTH_WERROR") == "1":
    extra_compile.append("-Werror")
sanitize = os.environ.get("GENAUTH_SANITIZE")
if sanitize:
    extra_compile += [f"-fsanitize={sanitize}", "-fno-omit-frame-pointer",
                      "-fno-sanitize-recover=undefined", "-O1", "-g"]
    extra_link.append(f"-fsanitize={sanitize}")

limited_api = os.environ.get("GENAUTH_LIMITED_API", "1") != "0"
macros = [("Py_LIMITED_API", "0x030B0000")] if limited_api else []

core = Extension(
    "genauth_c._core",
    sources=sorted(glob("src/core/*.c")) + sorted(glob("src/binding/*.c")),
    include_dirs=["src/core", "src/binding"],
    depends=glob("src/core/*.h") + glob("src/binding/*.h"),
    extra_compile_args=extra_compile,
    extra_link_args=extra_link,
    define_macros=macros,
    py_limited_api=limited_api,
)

setup(version=core_version(), ext_modules=[core],
      cmdclass={"build_ext": BuildExt, "build_py": BuildPy},
      options={"bdist_wheel": {"py_limited_api": "cp311"}} if limited_api
      else {})
