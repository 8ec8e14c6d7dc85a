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
        "files": files(t.get("files", [])),
        "network": t.get("network", []),
        "syscalls": [x for x in s.get("syscalls", []) if not x.startswith("~")],
        "kmod": [],
    }
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
