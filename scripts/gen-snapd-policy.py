#!/usr/bin/python3
"""gen-snapd-policy.py REFERENCE_JSON > data/snapd-policy.json

The project's copy of snapd's interface policy, derived from
shared/reference/snapd-interfaces.json (parsed from snapd's Go sources; see
its _meta): per interface, the capabilities, file rules, network rules and
seccomp syscalls it grants, and snapd's default AppArmor and seccomp
templates as the pseudo-interface "default". nova-hypervisor explain-denial
and the confinement conformance test read this file (it is compiled into
libnova). Regenerate it when the reference moves to a newer snapd.
"""
import json
import sys


# The reference lists the abstractions the default template includes
# (<abstractions/base>, <abstractions/openssl>, ...) without expanding their
# file rules. These are the rules of AppArmor's abstractions/base and
# abstractions/openssl that every C program hits (dynamic loader, shared
# libraries, /dev/null, glibc's sysconf reads); check them against
# /var/lib/snapd/apparmor/profiles/snap.nova-hypervisor.* on the test VM.
ABSTRACTION_FILES = [
    ("/etc/ld.so.cache", "mr"),
    ("/etc/ld.so.conf", "r"),
    ("/etc/ld.so.conf.d/{,*.conf}", "r"),
    ("/etc/ld.so.preload", "r"),
    ("/{usr/,}lib{,32,64}/ld{,32,64}-*.so", "mr"),
    ("/{usr/,}lib/@{multiarch}/ld{,32,64}-*.so", "mr"),
    ("/{usr/,}lib{,32,64}/**.so*", "mr"),
    ("/{usr/,}lib/@{multiarch}/**.so*", "mr"),
    ("/dev/log", "w"),
    ("/dev/random", "r"),
    ("/dev/urandom", "r"),
    ("/dev/null", "rw"),
    ("/dev/zero", "rw"),
    ("/dev/full", "rw"),
    ("/etc/locale.alias", "r"),
    ("/etc/localtime", "r"),
    ("/usr/share/locale/**", "r"),
    ("/usr/lib/locale/**", "mr"),
    ("@{PROC}/filesystems", "r"),
    ("@{PROC}/sys/kernel/version", "r"),
    ("@{PROC}/sys/kernel/ngroups_max", "r"),
    ("@{PROC}/sys/kernel/cap_last_cap", "r"),
    ("@{PROC}/sys/vm/overcommit_memory", "r"),
    ("@{PROC}/meminfo", "r"),
    ("@{PROC}/stat", "r"),
    ("@{PROC}/cpuinfo", "r"),
    ("/sys/devices/system/cpu/", "r"),
    ("/sys/devices/system/cpu/online", "r"),
    ("@{PROC}/@{pid}/maps", "r"),
    ("@{PROC}/@{pid}/auxv", "r"),
    ("@{PROC}/@{pid}/status", "r"),
    # abstractions/openssl
    ("/etc/ssl/openssl.cnf", "r"),
    ("@{PROC}/sys/crypto/fips_enabled", "r"),
]


def files(rules):
    out = []
    for f in rules:
        r = {"path": f["path"], "perms": f["perms"]}
        if f.get("owner"):
            r["owner"] = True
        out.append(r)
    return out


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    ref = json.load(open(argv[1], encoding="utf-8"))
    meta = ref["_meta"]
    out = {
        "_source": {
            "derived_from": "shared/reference/snapd-interfaces.json",
            "snapd_repo": meta.get("snapd_repo"),
            "snapd_commit": meta.get("snapd_commit"),
            "snapd_describe": meta.get("snapd_describe"),
            "generator": "scripts/gen-snapd-policy.py",
        },
        "interfaces": {},
    }
    for name, v in ref.items():
        if name.startswith("_") or name.startswith("default"):
            continue
        out["interfaces"][name] = {
            "autoconnect": v.get("autoconnect"),
            "store_review": v.get("store_review"),
            "capabilities": v.get("capabilities", []),
            "capabilities_denied": v.get("capabilities_effectively_denied", []),
            "files": files(v.get("files", [])),
            "network": sorted(set(v.get("network", []) + v.get("network_via_abstractions", []))),
            "syscalls": v.get("syscalls", []),
            "kmod": v.get("kmod", []),
        }
    t, s = ref["default-template"], ref["default-seccomp-template"]
    out["interfaces"]["default"] = {
        "autoconnect": True,
        "store_review": "auto",
        "capabilities": t.get("capabilities", []),
        "capabilities_denied": [],
        "files": files(t.get("files", []))
        + [{"path": p, "perms": m, "abstraction": True} for p, m in ABSTRACTION_FILES],
        "network": t.get("network", []),
        "syscalls": [x for x in s.get("syscalls", []) if not x.startswith("~")],
        "kmod": [],
    }
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
