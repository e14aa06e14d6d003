"""Copies the wheel that `auditwheel repair` made into OUTDIR with the
copyright notices of the libraries it bundled added to its licenses.

    python tools/wheel_licenses.py build/repaired/genauth_c-...whl dist

auditwheel copies libcurl and the libraries it pulls in (OpenSSL, GnuTLS,
GMP, Kerberos, OpenLDAP...) into genauth_c.libs/ but none of their licenses,
several of which (LGPL, GPL-2 or LGPL-3 for GMP) require their notice to go
with every copy. Each library's Debian package has its notice in
/usr/share/doc/PACKAGE/copyright; it goes into the wheel as
.dist-info/licenses/bundled/PACKAGE/copyright, named by a License-File line
in METADATA, and bundled/README lists which library came from which package
and version (its source is Debian's source package of that version).
RECORD is written again, as the wheel format requires.
"""
import base64
import hashlib
import os
import re
import subprocess
import sys
import zipfile


def debian_package(bundled):
    """The Debian package (name, version) that shipped the library which
    auditwheel copied as `bundled` (it inserts -<8 hex digits> into the
    name: libcurl-02fbea31.so.4.8.0 was libcurl.so.4.8.0)."""
    original = re.sub(r"^(.*)-[0-9a-f]{8}\.", r"\1.", bundled)
    found = subprocess.run(["dpkg", "-S", "*/" + original], check=True,
                           capture_output=True, text=True).stdout
    package = found.split(":", 1)[0].strip()
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                             check=True, capture_output=True,
                             text=True).stdout
    return package, version


def record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest())
    return f"{name},sha256={digest.rstrip(b'=').decode()},{len(data)}"


def main(wheel, outdir):
    with zipfile.ZipFile(wheel) as src:
        infos = {i.filename: i for i in src.infolist() if not i.is_dir()}
        files = {n: src.read(i) for n, i in infos.items()}
    dist_info = next(n.split("/")[0] for n in files
                     if n.endswith(".dist-info/METADATA"))
    libs = sorted(n.split("/", 1)[1] for n in files
                  if n.startswith("genauth_c.libs/"))
    if not libs:
        sys.exit(f"{wheel}: no genauth_c.libs/: not a wheel auditwheel repaired")
    listing = ["Libraries in genauth_c.libs/, the Debian packages they come "
               "from, and their notices:", ""]
    notices = {}
    for lib in libs:
        package, version = debian_package(lib)
        notice = f"bundled/{package}/copyright"
        listing.append(f"{lib}  {package} {version}  {notice}")
        if notice not in notices:
            with open(f"/usr/share/doc/{package}/copyright", "rb") as f:
                notices[notice] = f.read()
    added = {f"{dist_info}/licenses/{n}": data for n, data in notices.items()}
    added[f"{dist_info}/licenses/bundled/README"] = \
        ("\n".join(listing) + "\n").encode()

    metadata = files[f"{dist_info}/METADATA"].decode()
    head, sep, body = metadata.partition("\n\n")
    head += "".join(f"\nLicense-File: {n}" for n in sorted(notices))
    files[f"{dist_info}/METADATA"] = (head + sep + body).encode()
    files.update(added)

    record = f"{dist_info}/RECORD"
    del files[record]
    out = os.path.join(outdir, os.path.basename(wheel))
    os.makedirs(outdir, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, data in files.items():
            # Each file keeps its mode and date (a name alone would get
            # mode 0600 and the time of this run).
            info = infos.get(name)
            if info is None:
                info = zipfile.ZipInfo(name, infos[record].date_time)
                info.external_attr = 0o100644 << 16   # a regular file, rw-r--r--
            dst.writestr(info, data, zipfile.ZIP_DEFLATED)
        dst.writestr(infos[record], "\n".join(
            [record_line(n, d) for n, d in files.items()] + [record + ",,"])
            + "\n")
    print(f"{out}: the notices of {len(notices)} Debian packages added")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
