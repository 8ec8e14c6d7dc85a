#!/usr/bin/python3
"""snaplibs.py - the shared libraries of the snap against its base (core22).

  snaplibs.py bundle PRIME        copy into PRIME/usr/lib/<triplet>/ every library the ELF files
                                  under PRIME need (NEEDED, transitively) that the base lacks or
                                  ships too old; prints one line per bundled library
  snaplibs.py check SNAPDIR       fail (exit 1, one line per problem) when a NEEDED library of an
                                  ELF file in the unpacked snap resolves neither in the snap (the
                                  LD_LIBRARY_PATH of its meta/snap.yaml) nor in the base, when
                                  an ELF file needs a glibc symbol version newer than the base's,
                                  and on what store review checks of ELF files and paths: an
                                  executable stack, an RPATH/RUNPATH outside $ORIGIN, a symlink
                                  out of the snap
  snaplibs.py baselist ROOT       snap/base/core22-libs.txt from a tree built by scripts/base/mkbase.sh
  snaplibs.py elf FILE            what the ELF reader sees (soname, needed, runpath, verneed)

What "the base provides a library" means here:
  - its file name (the NEEDED string) is in snap/base/core22-libs.txt: the libraries of the
    stand-in tree built from core22's own package list (Debian 12 packages), with the package
    that ships each; and
  - that package exists in jammy (snap/base/jammy-versions.txt) in a version at least as new
    as every shipped ELF file needs (dpkg-shlibdeps over all of them, bundled libraries
    included: the symbols files of the build host).
    A library whose jammy version is older (libvirt 9.0 needs gnutls >= 3.7.5, jammy has
    3.7.3) is bundled instead. glibc is never bundled: needing a newer one is an error.

Run with /usr/bin/python3 (python3-yaml, dpkg-dev for dpkg-shlibdeps; both in scripts/deps.sh).
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

import yaml

TRIPLET = "x86_64-linux-gnu"
BASE_GLIBC = (2, 35)  # core22: glibc 2.35
ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
BASE_LIBS = os.path.join(ROOT, "snap/base/core22-libs.txt")
JAMMY_VERSIONS = os.path.join(ROOT, "snap/base/jammy-versions.txt")
# The build host's library directories, searched in the dynamic linker's default order.
HOST_LIB_DIRS = ["/usr/lib/" + TRIPLET, "/lib/" + TRIPLET, "/usr/lib", "/lib"]
# Where a strict snap's libraries are found: snapcraft's LD_LIBRARY_PATH (existing dirs of these).
SNAP_LIB_DIRS = ["lib", "usr/lib", "lib/" + TRIPLET, "usr/lib/" + TRIPLET]
BUNDLE_DIR = "usr/lib/" + TRIPLET
GLIBC_PACKAGE = "libc6"
MAX_ELF = 256 << 20


class ElfError(Exception):
    pass


# ---- a small ELF64 little-endian reader: section headers, .dynamic, .gnu.version_r, .note.dlopen ----

SHT_STRTAB, SHT_DYNAMIC, SHT_NOTE, SHT_GNU_VERNEED = 3, 6, 7, 0x6FFFFFFE
# systemd's "ELF dlopen metadata": a note of owner FDO, this type, a JSON array of
# {"soname": [...], "priority": ...}: the libraries a program dlopen()s (src/core/curl-lazy.c).
NT_FDO_DLOPEN = 0x407C0C0A
MAX_DLOPEN_JSON = 64 << 10
DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH = 1, 14, 15, 29
PT_GNU_STACK, PF_X = 0x6474E551, 1


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def _cstr(data, off):
    if off < 0 or off >= len(data):
        raise ElfError(f"string offset {off} out of range")
    end = data.find(b"\0", off)
    if end < 0:
        raise ElfError("unterminated string")
    return data[off:end].decode("utf-8", "replace")


def _dlopen_notes(path, sec):
    """The sonames declared by the FDO dlopen notes of one SHT_NOTE section."""
    names, pos = [], 0
    while pos + 12 <= len(sec):
        namesz, descsz, ntype = struct.unpack_from("<III", sec, pos)
        name_end = pos + 12 + namesz
        desc_off = pos + 12 + ((namesz + 3) & ~3)
        desc_end = desc_off + descsz
        if name_end > len(sec) or desc_end > len(sec):
            raise ElfError(f"{path}: note out of its section")
        owner = sec[pos + 12:name_end].rstrip(b"\0")
        if owner == b"FDO" and ntype == NT_FDO_DLOPEN:
            if descsz > MAX_DLOPEN_JSON:
                raise ElfError(f"{path}: dlopen note larger than {MAX_DLOPEN_JSON} bytes")
            try:
                entries = json.loads(sec[desc_off:desc_end].rstrip(b"\0").decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                raise ElfError(f"{path}: dlopen note is not JSON: {e}") from None
            if not isinstance(entries, list):
                raise ElfError(f"{path}: dlopen note is not a JSON array")
            for ent in entries:
                sonames = ent.get("soname") if isinstance(ent, dict) else None
                if (not isinstance(sonames, list) or not sonames
                        or not all(isinstance(n, str) and n and "/" not in n for n in sonames)):
                    raise ElfError(f"{path}: dlopen note entry without a valid soname list")
                names.append(sonames[0])
        pos = desc_off + ((descsz + 3) & ~3)
    return names


def read_elf(path):
    """{'type', 'soname', 'needed': [...], 'runpath': [...], 'verneed': {file: [names]},
    'dlopen': [sonames]} (dlopen: the first soname of each entry of FDO dlopen notes)."""
    size = os.path.getsize(path)
    if size > MAX_ELF:
        raise ElfError(f"{path}: larger than {MAX_ELF} bytes")
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 64 or data[:4] != b"\x7fELF":
        raise ElfError(f"{path}: not ELF")
    if data[4] != 2 or data[5] != 1:
        raise ElfError(f"{path}: not ELF64 little-endian")
    e_type, = struct.unpack_from("<H", data, 16)
    e_phoff, e_shoff = struct.unpack_from("<QQ", data, 32)
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 54)
    e_shentsize, e_shnum = struct.unpack_from("<HH", data, 58)
    if e_shoff == 0 or e_shnum == 0:
        raise ElfError(f"{path}: no section headers")
    if e_shentsize != 64 or e_shoff + e_shnum * 64 > len(data):
        raise ElfError(f"{path}: bad section header table")
    sections = []
    for i in range(e_shnum):
        (name, stype, flags, addr, off, ssize, link, info, align,
         entsize) = struct.unpack_from("<IIQQQQIIQQ", data, e_shoff + i * 64)
        if stype not in (8,) and off + ssize > len(data):  # 8 = SHT_NOBITS
            raise ElfError(f"{path}: section {i} out of the file")
        sections.append((stype, off, ssize, link, info))

    def strtab(idx):
        if idx >= len(sections) or sections[idx][0] != SHT_STRTAB:
            raise ElfError(f"{path}: section {idx} is not a string table")
        _, off, ssize, _, _ = sections[idx]
        return data[off:off + ssize]

    out = {"type": e_type, "soname": None, "needed": [], "runpath": [], "verneed": {}, "execstack": False,
           "dlopen": []}
    if e_phnum and (e_phentsize != 56 or e_phoff + e_phnum * 56 > len(data)):
        raise ElfError(f"{path}: bad program header table")
    for i in range(e_phnum):
        p_type, p_flags = struct.unpack_from("<II", data, e_phoff + i * 56)
        if p_type == PT_GNU_STACK:
            out["execstack"] = bool(p_flags & PF_X)
    for stype, off, ssize, link, info in sections:
        if stype == SHT_DYNAMIC:
            strs = strtab(link)
            for pos in range(off, off + ssize - 15, 16):
                tag, val = struct.unpack_from("<qQ", data, pos)
                if tag == 0:
                    break
                if tag == DT_NEEDED:
                    out["needed"].append(_cstr(strs, val))
                elif tag == DT_SONAME:
                    out["soname"] = _cstr(strs, val)
                elif tag in (DT_RPATH, DT_RUNPATH):
                    out["runpath"] += _cstr(strs, val).split(":")
        elif stype == SHT_NOTE:
            out["dlopen"] += _dlopen_notes(path, data[off:off + ssize])
        elif stype == SHT_GNU_VERNEED:
            strs = strtab(link)
            pos = off
            for _ in range(info):
                if pos + 16 > off + ssize:
                    raise ElfError(f"{path}: verneed out of its section")
                _ver, cnt, vfile, aux, nxt = struct.unpack_from("<HHIII", data, pos)
                names = out["verneed"].setdefault(_cstr(strs, vfile), [])
                apos = pos + aux
                for _ in range(cnt):
                    if apos + 16 > off + ssize:
                        raise ElfError(f"{path}: vernaux out of its section")
                    _h, _fl, _o, vname, anext = struct.unpack_from("<IHHII", data, apos)
                    names.append(_cstr(strs, vname))
                    if anext == 0:
                        break
                    apos += anext
                if nxt == 0:
                    break
                pos += nxt
    return out


def glibc_too_new(elf):
    """The GLIBC_x.y[.z] versions an ELF file needs beyond the base's glibc."""
    bad = []
    for names in elf["verneed"].values():
        for n in names:
            m = re.fullmatch(r"GLIBC_(\d+)\.(\d+)(?:\.\d+)?", n)
            if m and (int(m.group(1)), int(m.group(2))) > BASE_GLIBC:
                bad.append(n)
    return sorted(set(bad))


# ---- the base's lists ----

def load_base_libs(path=BASE_LIBS):
    """file name -> Debian 12 package, from snap/base/core22-libs.txt."""
    libs = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 3:
                raise SystemExit(f"{path}: bad line: {line}")
            libs[parts[0]] = parts[2]
    if not libs:
        raise SystemExit(f"{path}: empty")
    return libs


def load_jammy_versions(path=JAMMY_VERSIONS):
    """package -> jammy version, or None when jammy has no package of that name."""
    vers = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2:
                raise SystemExit(f"{path}: bad line: {line}")
            vers[parts[0]] = None if parts[1] == "-" else parts[1]
    return vers


def version_lt(a, b):
    return subprocess.run(["dpkg", "--compare-versions", a, "lt", b]).returncode == 0


# ---- what the shipped ELF files need from Debian packages ----

DEP_RE = re.compile(r"^\s*([a-z0-9][a-z0-9+.-]*)(?::[a-z0-9]+)?\s*(?:\(\s*>=\s*([^)\s]+)\s*\))?\s*$")


def parse_depends(text, into):
    """Fold 'pkg (>= v), a | b' into {pkg: highest minimum version or ''}; alternatives are skipped."""
    for clause in text.split(","):
        clause = clause.strip()
        if not clause or "|" in clause:
            continue
        m = DEP_RE.match(clause)
        if not m:
            continue
        pkg, ver = m.group(1), m.group(2) or ""
        old = into.get(pkg)
        if old is None or (ver and (not old or version_lt(old, ver))):
            into[pkg] = ver


def shlibdeps(files):
    """Minimum package versions our own programs need (dpkg-shlibdeps, symbols files of the host)."""
    if not files:
        return {}
    with tempfile.TemporaryDirectory(prefix="nova-shlibdeps-") as d:
        os.makedirs(os.path.join(d, "debian"))
        with open(os.path.join(d, "debian/control"), "w", encoding="utf-8") as f:
            f.write("Source: nova-hypervisor\n\nPackage: nova-hypervisor\nArchitecture: any\n")
        r = subprocess.run(["dpkg-shlibdeps", "-O", "--warnings=0"] + [os.path.abspath(p) for p in files],
                           cwd=d, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit("snaplibs: dpkg-shlibdeps failed: " + r.stderr.strip())
    out = {}
    for line in r.stdout.splitlines():
        if line.startswith("shlibs:Depends="):
            parse_depends(line.split("=", 1)[1], out)
    return out


_owner_cache = {}


def host_package_of(path):
    """The Debian package that ships a library file on the build host (dpkg -S)."""
    real = os.path.realpath(path)
    if real in _owner_cache:
        return _owner_cache[real]
    cands = {path, real}
    for p in list(cands):
        if p.startswith("/usr/lib/"):
            cands.add(p[len("/usr"):])
        elif p.startswith("/lib/"):
            cands.add("/usr" + p)
    pkg = None
    for c in sorted(cands):
        r = subprocess.run(["dpkg-query", "-S", c], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip():
            pkg = r.stdout.split(":", 1)[0].split(",")[0].strip()
            break
    _owner_cache[real] = pkg
    return pkg


def find_host_lib(name):
    for d in HOST_LIB_DIRS:
        p = os.path.join(d, name)
        if os.path.exists(p) and is_elf(p):
            return p
    return None


# ---- resolution ----

def elf_files(tree):
    found = []
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        if os.path.relpath(dirpath, tree).split(os.sep)[0] == "meta":
            continue
        for fn in sorted(filenames):
            p = os.path.join(dirpath, fn)
            if os.path.isfile(p) and not os.path.islink(p) and is_elf(p):
                found.append(p)
    return found


class Resolver:
    """Decides, for each NEEDED name, whether the base provides it for these ELF files."""

    def __init__(self):
        self.base = load_base_libs()
        self.jammy = load_jammy_versions()
        self.required = {}  # package -> minimum version the shipped files need

    def add_requirements(self, reqs):
        for pkg, ver in reqs.items():
            old = self.required.get(pkg)
            if old is None or (ver and (not old or version_lt(old, ver))):
                self.required[pkg] = ver

    def base_provides(self, name):
        """(True, pkg) or (False, why)."""
        pkg = self.base.get(name)
        if pkg is None:
            return False, "not in the base"
        if pkg not in self.jammy:
            return False, (f"in the base's Debian 12 list as {pkg}, whose jammy version is not "
                           f"recorded in snap/base/jammy-versions.txt")
        jv = self.jammy[pkg]
        if jv is None:
            return False, f"jammy has no package {pkg} (Debian 12's name for it)"
        need = self.required.get(pkg) or ""
        if need and version_lt(jv, need):
            return False, f"jammy's {pkg} is {jv}, older than the {need} our files need"
        return True, pkg


def bundle(prime):
    """Copy the libraries the base lacks into PRIME/usr/lib/<triplet>/ (which is ours: emptied
    first); returns [(name, source, why)]. What a file needs from a base package is what
    dpkg-shlibdeps says for every shipped ELF file, bundled libraries included, so the result
    is the same whatever order libraries are found in."""
    res = Resolver()
    dest = os.path.join(prime, BUNDLE_DIR)
    shutil.rmtree(dest, ignore_errors=True)
    programs = elf_files(prime)
    res.add_requirements(shlibdeps(programs))
    bundled = {}  # name -> (host path, why)
    while True:
        files = programs + [os.path.join(dest, n) for n in bundled]
        needed = {}
        for p in files:
            elf = read_elf(p)
            for n in elf["needed"] + elf["dlopen"]:
                needed.setdefault(n, p)
        new, problems = [], []
        for name in sorted(needed):
            if name in bundled:
                continue
            ok, why = res.base_provides(name)
            if ok:
                continue
            src = find_host_lib(name)
            if src is None:
                problems.append(f"{name} (needed by {os.path.relpath(needed[name], prime)}): {why}, "
                                f"and the build host has no such library")
                continue
            pkg = host_package_of(src)
            if pkg == GLIBC_PACKAGE or res.base.get(name) == GLIBC_PACKAGE:
                problems.append(f"{name}: glibc is never bundled ({why})")
                continue
            os.makedirs(dest, exist_ok=True)
            shutil.copyfile(src, os.path.join(dest, name))
            os.chmod(os.path.join(dest, name), 0o644)
            bundled[name] = (os.path.realpath(src), f"{why}; from {pkg or 'an unpackaged file'}")
            new.append(os.path.join(dest, name))
        if problems:
            raise SystemExit("snaplibs bundle: cannot resolve:\n  " + "\n  ".join(sorted(set(problems))))
        if not new:
            break
        # What the new libraries need may make an earlier "the base has it" stale: go round again.
        res.add_requirements(shlibdeps(new))
    return [(n, src, why) for n, (src, why) in sorted(bundled.items())]


def snap_lib_dirs(snapdir):
    """The $SNAP/... directories of LD_LIBRARY_PATH in meta/snap.yaml's environment."""
    with open(os.path.join(snapdir, "meta/snap.yaml"), encoding="utf-8") as f:
        meta = yaml.safe_load(f)
    llp = ((meta.get("environment") or {}).get("LD_LIBRARY_PATH")) or ""
    dirs = []
    for part in llp.split(":"):
        if part.startswith("$SNAP/"):
            dirs.append(os.path.join(snapdir, part[len("$SNAP/"):]))
    return dirs


def check(snapdir):
    problems = []
    res = Resolver()
    dirs = snap_lib_dirs(snapdir)
    if not dirs:
        problems.append("meta/snap.yaml: no $SNAP/... directory in environment: LD_LIBRARY_PATH")
    for dirpath, dirnames, filenames in os.walk(snapdir):
        for fn in dirnames + filenames:
            p = os.path.join(dirpath, fn)
            if os.path.islink(p):
                target = os.path.normpath(os.path.join(dirpath, os.readlink(p)))
                if os.path.isabs(os.readlink(p)) or not target.startswith(os.path.normpath(snapdir) + os.sep):
                    problems.append(f"{os.path.relpath(p, snapdir)}: symlink out of the snap "
                                    f"({os.readlink(p)}; store review rejects it)")
    files = elf_files(snapdir)
    if not files:
        problems.append("no ELF file in the snap")
    res.add_requirements(shlibdeps(files))
    for p in files:
        rel = os.path.relpath(p, snapdir)
        try:
            elf = read_elf(p)
        except ElfError as e:
            problems.append(str(e))
            continue
        if elf["execstack"]:
            problems.append(f"{rel}: executable stack (PT_GNU_STACK has PF_X; store review flags it)")
        for r in elf["runpath"]:
            if r and not r.startswith("$ORIGIN"):
                problems.append(f"{rel}: RPATH/RUNPATH {r} points outside the snap")
        for v in glibc_too_new(elf):
            problems.append(f"{rel}: needs {v}, newer than the base's glibc "
                            f"{BASE_GLIBC[0]}.{BASE_GLIBC[1]}")
        for name in elf["needed"] + elf["dlopen"]:
            if any(os.path.exists(os.path.join(d, name)) for d in dirs):
                continue
            ok, why = res.base_provides(name)
            if not ok:
                how = "dlopen()s" if name in elf["dlopen"] and name not in elf["needed"] else "needs"
                problems.append(f"{rel}: {how} {name}: not in the snap's library path and {why}")
    return problems


# ---- the base's library list ----

def baselist(root):
    """Lines '<file name> <path in the base> <Debian 12 package>' for every ELF library the
    dynamic linker of ROOT finds by name (its default directories and /etc/ld.so.conf.d)."""
    dirs = ["/usr/lib/" + TRIPLET, "/lib/" + TRIPLET, "/usr/lib", "/lib", "/usr/lib64", "/lib64"]
    conf = os.path.join(root, "etc/ld.so.conf.d")
    if os.path.isdir(conf):
        for fn in sorted(os.listdir(conf)):
            if fn.endswith(".conf"):
                with open(os.path.join(conf, fn), encoding="utf-8") as f:
                    for line in f:
                        line = line.split("#", 1)[0].strip()
                        if line.startswith("/") and line not in dirs:
                            dirs.append(line)
    owner = {}
    info = os.path.join(root, "var/lib/dpkg/info")
    for fn in sorted(os.listdir(info)):
        if not fn.endswith(".list"):
            continue
        pkg = fn[:-5].split(":", 1)[0]
        with open(os.path.join(info, fn), encoding="utf-8") as f:
            for line in f:
                path = line.rstrip("\n")
                real = os.path.realpath(os.path.join(root, path.lstrip("/")))
                owner.setdefault(real, pkg)
    lines = {}
    seen_dirs = set()
    for d in dirs:
        full = os.path.join(root, d.lstrip("/"))
        real_dir = os.path.realpath(full)
        if not os.path.isdir(full) or real_dir in seen_dirs:
            continue
        seen_dirs.add(real_dir)
        for fn in sorted(os.listdir(full)):
            p = os.path.join(full, fn)
            if ".so" not in fn or not os.path.isfile(p):
                continue
            real = os.path.realpath(p)
            if not real.startswith(os.path.realpath(root) + os.sep) or not is_elf(real):
                continue
            try:
                elf = read_elf(real)
            except ElfError:
                continue
            if elf["type"] != 3:  # ET_DYN
                continue
            pkg = owner.get(real)
            if pkg is None:
                continue  # not from a package: not part of the base's package set
            lines.setdefault(fn, (os.path.join(d, fn), pkg))
    return [f"{n} {p} {pkg}" for n, (p, pkg) in sorted(lines.items())]


BASELIST_HEADER = """\
# The libraries of the core22 base, as scripts/snaplibs.py resolves NEEDED entries against it.
# GENERATED by `make snap-baselist` (scripts/snaplibs.py baselist on the tree that
# scripts/base/mkbase.sh builds from snap/base/core22-packages.txt); do not edit by hand.
#
# Format: <file name the dynamic linker finds> <path in the base> <Debian 12 package>
#
# Method: core22's package list (canonical/core-base, branch core22) mapped to Debian 12 names,
# installed over `debootstrap --variant=minbase bookworm` with apt's dependency resolution
# (--no-install-recommends, as core-base does), minus the packages core-base's hooks remove;
# then every ELF shared object in the dynamic linker's directories of that tree, named as the
# linker looks it up, with the package that ships it (the tree's dpkg database).
#
# Limits: jammy's packages are not in Debian's archive, so this is Debian 12's view of
# core22's package set. (1) A soname can differ between the two (Debian 12 libicu72 vs
# jammy libicu70): snap/base/jammy-versions.txt says which of these packages exist in jammy
# and in which version, and a library whose package is absent there, or older in jammy than
# our files need, is bundled instead (scripts/snaplibs.py). (2) Dependencies that pull in a
# library on one side only (a Debian 12 dependency jammy does not have, or the reverse) are
# not modelled beyond that table. (3) Packages with no Debian 12 equivalent ("-" in
# core22-packages.txt: Python tools, fonts, data) are missing here; none ships a library
# in the linker's path that our files could use.
"""


def main(argv):
    if len(argv) == 3 and argv[1] == "bundle":
        for name, src, why in bundle(argv[2]):
            print(f"bundled {name} ({src}): {why}")
        return 0
    if len(argv) == 3 and argv[1] == "check":
        problems = check(argv[2])
        for p in problems:
            print(f"snap-libs: {p}", file=sys.stderr)
        if problems:
            print(f"snap-libs: FAILED ({len(problems)} problems)", file=sys.stderr)
            return 1
        print("snap-libs: every NEEDED (and dlopen-noted) library resolves in the snap or in core22; glibc <= "
              f"{BASE_GLIBC[0]}.{BASE_GLIBC[1]}")
        return 0
    if len(argv) == 3 and argv[1] == "baselist":
        print(BASELIST_HEADER.rstrip("\n"))
        for line in baselist(argv[2]):
            print(line)
        return 0
    if len(argv) == 3 and argv[1] == "elf":
        e = read_elf(argv[2])
        print(f"execstack {e['execstack']}\nsoname {e['soname']}\nneeded {' '.join(e['needed'])}\nrunpath {':'.join(e['runpath'])}")
        print(f"dlopen {' '.join(e['dlopen'])}")
        for f, names in e["verneed"].items():
            print(f"verneed {f} {' '.join(names)}")
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
