"""`make wheel`: a manylinux wheel that carries libcurl and cJSON, installed
into a fresh virtual environment (not the one the tests run in), loading the
libraries it carries, running the demo and verifying TLS on a machine laid
out as another distribution. It is built on the stable ABI (abi3): the same
wheel runs on every CPython from 3.11 on."""
import base64
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from packaging_env import ROOT, make_env, not_under_sanitizer, venv_with_wheel

pytestmark = [pytest.mark.slow, not_under_sanitizer]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    if sys.prefix == sys.base_prefix:
        pytest.skip("make wheel builds with the tests' virtual environment; "
                    "run from one (make test does)")
    out = tmp_path_factory.mktemp("wheelhouse")
    r = subprocess.run(
        ["make", "-C", ROOT, "wheel", f"VENV={sys.prefix}",
         f"WHEEL_DIR={out}"],
        env=make_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    wheels = glob.glob(str(out / "*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def wheel_python(wheel, tmp_path_factory):
    return venv_with_wheel(sys.executable, wheel, tmp_path_factory)


def test_wheel_is_manylinux_and_carries_its_libraries(wheel):
    name = os.path.basename(wheel)
    assert re.fullmatch(
        r"genauth_c-[0-9.]+-cp311-abi3-manylinux_2_\d+_x86_64\.whl", name), name
    files = zipfile.ZipFile(wheel).namelist()
    assert "genauth_c/_core.abi3.so" in files, files
    libs = [f for f in files if f.startswith("genauth_c.libs/")]
    for lib in ("libcurl", "libcjson", "libssl", "libcrypto"):
        assert any(os.path.basename(f).startswith(lib + "-") for f in libs), libs
    assert any(f.endswith(".dist-info/licenses/LICENSE") for f in files), files
    assert "genauth_c/__init__.pyi" in files and "genauth_c/py.typed" in files
    metadata = next(f for f in files if f.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "License-Expression: MIT" in text


def test_wheel_carries_the_notices_of_the_libraries_it_bundles(wheel):
    # OpenSSL, GnuTLS, GMP (LGPL-3 or GPL-2)... are copied into the wheel:
    # their licenses require their notices to go with each copy.
    whl = zipfile.ZipFile(wheel)
    files = whl.namelist()
    dist_info = next(f.split("/")[0] for f in files
                     if f.endswith(".dist-info/METADATA"))
    libs = sorted(os.path.basename(f) for f in files
                  if f.startswith("genauth_c.libs/") and not f.endswith("/"))
    listing = f"{dist_info}/licenses/bundled/README"
    assert listing in files, files
    rows = [line.split("  ") for line in
            whl.read(listing).decode().splitlines()[2:]]
    assert sorted(lib for lib, _, _ in rows) == libs
    metadata = whl.read(f"{dist_info}/METADATA").decode().split("\n\n")[0]
    for lib, package, notice in rows:
        text = whl.read(f"{dist_info}/licenses/{notice}").decode("utf-8",
                                                                 "replace")
        assert "opyright" in text, (lib, notice)
        assert f"License-File: {notice}\n" in metadata + "\n", notice
    assert any(lib.startswith("libcurl-") and package.startswith("libcurl4")
               for lib, package, _ in rows), rows


def test_wheel_record_lists_every_file_with_its_hash(wheel):
    whl = zipfile.ZipFile(wheel)
    files = [i.filename for i in whl.infolist() if not i.is_dir()]
    record_name = next(f for f in files if f.endswith(".dist-info/RECORD"))
    record = {}
    for line in whl.read(record_name).decode().splitlines():
        name, digest, size = line.rsplit(",", 2)
        record[name] = (digest, size)
    assert sorted(record) == sorted(files)
    for name in files:
        if name == record_name:
            continue
        data = whl.read(name)
        digest = base64.urlsafe_b64encode(
            hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert record[name] == ("sha256=" + digest, str(len(data))), name


def test_extension_loads_the_bundled_libcurl(wheel_python, tmp_path):
    ext = subprocess.run(
        [wheel_python, "-c", "import genauth_c._core as m; print(m.__file__)"],
        cwd=tmp_path, check=True, capture_output=True, text=True).stdout.strip()
    assert "site-packages" in ext, ext
    ldd = subprocess.run(["ldd", ext], check=True, capture_output=True,
                         text=True).stdout
    resolved = {}
    for line in ldd.splitlines():
        m = re.match(r"\s*(\S+) => (\S+)", line)
        if m:
            resolved[m.group(1)] = m.group(2)
    for lib in ("libcurl", "libcjson"):
        paths = [p for n, p in resolved.items() if n.startswith(lib + "-")]
        assert paths and all("/genauth_c.libs/" in p for p in paths), ldd
    assert not any(n.startswith("libcurl.so") for n in resolved), ldd


def test_demo_runs_from_the_wheel(wheel_python, tmp_path):
    r = subprocess.run([wheel_python, "-m", "genauth_c.demo"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert '"statusCode": 200' in r.stdout, r.stdout
    assert "=== webhook receiver got request #1 ===" in r.stdout, r.stdout


def runs(python):
    """Whether `python` starts (a version manager's shim may not)."""
    return subprocess.run([python, "-c", ""], capture_output=True,
                          timeout=60).returncode == 0


# The CPythons after 3.11 found on PATH.
LATER_PYTHONS = [p for p in (shutil.which(f"python3.{minor}")
                             for minor in range(12, 20)) if p and runs(p)]


@pytest.mark.skipif(not LATER_PYTHONS,
                    reason="no CPython after 3.11 on PATH (python3.12, ...)")
def test_the_same_wheel_runs_on_later_cpythons(wheel, tmp_path_factory,
                                               tmp_path):
    for python in LATER_PYTHONS:
        py = venv_with_wheel(python, wheel, tmp_path_factory)
        r = subprocess.run([py, "-m", "genauth_c.demo"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, python + ": " + r.stdout + r.stderr
        assert '"statusCode": 200' in r.stdout, python + ": " + r.stdout


def test_wheel_verifies_tls_where_debian_keeps_no_store(
        wheel_python, tls_fake, certificate, tmp_path):
    from test_castore import call_elsewhere, needs_namespace
    if needs_namespace.args[0]:
        pytest.skip(needs_namespace.kwargs["reason"])
    out = call_elsewhere(tmp_path, tls_fake.server.url,
                         etc_ssl={"ca-bundle.pem": certificate[0]},
                         python=wheel_python)
    assert out == {"statusCode": 200}
    out = call_elsewhere(tmp_path, tls_fake.server.url, python=wheel_python)
    assert "ca_bundle" in out.get("error", ""), out


def test_build_has_no_setuptools_deprecation(tmp_path):
    r = subprocess.run([sys.executable, "setup.py", "--name"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "genauth_c"
    assert "Deprecat" not in r.stdout + r.stderr, r.stderr
