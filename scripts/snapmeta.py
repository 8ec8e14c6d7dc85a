#!/usr/bin/python3
"""snapmeta.py - everything derived from snapcraft.yaml, in one place.

  snapmeta.py snap-yaml SNAPCRAFT_YAML HOOK_DIR [PRIME]
                                                  meta/snap.yaml on stdout (what snapcraft would write;
                                                  with PRIME, its environment: as snapcraft derives it)
  snapmeta.py version SNAPCRAFT_YAML              the version string
  snapmeta.py check [ROOT]                        snapcraft.yaml plugs, module apps, hooks, plugs.c and
                                                  interfaces/*/ agree (exit 1 with one line per problem)
  snapmeta.py store-request [ROOT]                the store auto-connect request text, from the manifests

Run with /usr/bin/python3 (python3-yaml, listed in scripts/deps.sh).
"""
import os
import re
import sys

import yaml

SNAP_NAME = "nova-hypervisor"
CORE_APP = "nova-compute"
CLI_APP = "nova-hypervisor"
# network-bind: the API socket; network: the Placement client's outbound HTTP(S) (src/core/placement.c)
CORE_PLUGS = ["network-bind", "network"]
NEVER = {
    "system-trace": "it grants bpf, perf_event_open and sys_admin for tracing; nothing here traces "
                    "the host, and the confinement conformance test traces our modules from outside",
    "account-control": "it grants chown/fsetid and audit_write to manage user accounts; we create no "
                       "users, and chown/chmod of our own files as root needs no interface",
    "kernel-module-control": "it grants sys_module; the kernel autoloads tun, bridge, veth and the "
                             "nf_tables modules on first use (and snapd's kmod backend loads what an "
                             "interface declares); the snap never loads a module",
}


def load_snapcraft(path):
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    if not isinstance(doc, dict):
        raise SystemExit(f"{path}: not a YAML mapping")
    return doc


def _str_presenter(dumper, data):
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


TRIPLET = "x86_64-linux-gnu"


def snap_environment(prime, environment=None):
    """The snap-wide environment snapcraft writes into meta/snap.yaml (core22, snapcraft 7+):
    LD_LIBRARY_PATH is ${SNAP_LIBRARY_PATH}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} followed by those of
    $SNAP/lib, $SNAP/usr/lib, $SNAP/lib/<triplet>, $SNAP/usr/lib/<triplet> that exist in the prime
    directory; PATH is $SNAP/usr/sbin:$SNAP/usr/bin:$SNAP/sbin:$SNAP/bin:$PATH. A key that
    snapcraft.yaml sets itself is kept. snapd applies this environment to every app and hook."""
    env = dict(environment or {})
    if "LD_LIBRARY_PATH" not in env:
        paths = ["${SNAP_LIBRARY_PATH}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"]
        for rel in ("lib", "usr/lib", "lib/" + TRIPLET, "usr/lib/" + TRIPLET):
            if os.path.exists(os.path.join(prime, rel)):
                paths.append("$SNAP/" + rel)
        env["LD_LIBRARY_PATH"] = ":".join(paths)
    env.setdefault("PATH", "$SNAP/usr/sbin:$SNAP/usr/bin:$SNAP/sbin:$SNAP/bin:$PATH")
    return env


def snap_yaml(snapcraft_path, hook_dir, prime=None):
    doc = load_snapcraft(snapcraft_path)
    meta = {}
    for key in ("name", "version", "summary", "description", "base", "grade", "confinement"):
        if key not in doc:
            raise SystemExit(f"{snapcraft_path}: missing {key}")
        meta[key] = doc[key]
    if prime is not None:
        meta["environment"] = snap_environment(prime, doc.get("environment"))
    elif "environment" in doc:
        meta["environment"] = doc["environment"]
    archs = []
    for a in doc.get("architectures", []):
        archs.append(a["build-on"] if isinstance(a, dict) else a)
    meta["architectures"] = archs or ["amd64"]
    if "plugs" in doc:
        meta["plugs"] = doc["plugs"]
    apps = {}
    for name, app in doc.get("apps", {}).items():
        apps[name] = dict(app)
    meta["apps"] = apps
    hooks = dict(doc.get("hooks") or {})
    if os.path.isdir(hook_dir):
        for h in sorted(os.listdir(hook_dir)):
            hooks.setdefault(h, None)
    if hooks:
        meta["hooks"] = {h: (v if v else {}) for h, v in sorted(hooks.items())}
    yaml.SafeDumper.add_representer(str, _str_presenter)
    return yaml.safe_dump(meta, sort_keys=False, default_flow_style=False)


def plug_table(root):
    """(plug, program) pairs of src/lib/plugs.c, the daemon's source of truth."""
    with open(os.path.join(root, "src/lib/plugs.c"), encoding="utf-8") as f:
        text = f.read()
    return re.findall(r'\[PLUG_[A-Z_]+\]\s*=\s*\{\s*"([a-z-]+)",\s*"(nova-[a-z-]+)"', text)


def module_apps(doc):
    """Module apps: daemons installed disabled."""
    return {n: a for n, a in doc.get("apps", {}).items() if a.get("install-mode") == "disable"}


def check(root):
    problems = []
    doc = load_snapcraft(os.path.join(root, "snapcraft.yaml"))
    table = plug_table(root)
    plugs = [p for p, _ in table]
    if len(plugs) != 8:
        problems.append(f"src/lib/plugs.c: expected the 8 plugs of the plug table, parsed {len(plugs)}")
    top = doc.get("plugs") or {}
    for p in plugs:
        if p not in top:
            problems.append(f"snapcraft.yaml: plug {p} (src/lib/plugs.c) is not requested under plugs:")
        elif (top[p] or {}).get("interface", p) != p:
            problems.append(f"snapcraft.yaml: plug {p} must use interface {p}")
    for p in top:
        if p not in plugs:
            problems.append(f"snapcraft.yaml: plug {p} is requested but has no module in src/lib/plugs.c")
    for p in NEVER:
        if p in top:
            problems.append(f"snapcraft.yaml: plug {p} must never be requested")
    apps = doc.get("apps") or {}
    mods = module_apps(doc)
    for p, program in table:
        app = apps.get(p)
        if app is None:
            problems.append(f"snapcraft.yaml: no app {p} for plug {p}")
            continue
        if app.get("install-mode") != "disable" or app.get("daemon") is None:
            problems.append(f"snapcraft.yaml: app {p} must be a daemon with install-mode: disable")
        if app.get("plugs") != [p]:
            problems.append(f"snapcraft.yaml: app {p} must list exactly plugs: [{p}], has {app.get('plugs')}")
        if app.get("command") != f"bin/nova-module {p}":
            problems.append(f"snapcraft.yaml: app {p} must run 'bin/nova-module {p}'")
        mdir = os.path.join(root, "interfaces", p)
        if not os.path.isdir(mdir):
            problems.append(f"interfaces/{p}/: missing: plug {p} is requested and has app {p}, "
                            f"but its module ({program}) does not exist yet")
        elif not os.path.isfile(os.path.join(mdir, "MANIFEST.md")):
            problems.append(f"interfaces/{p}/MANIFEST.md: missing (store review needs it)")
        elif not os.path.isfile(os.path.join(mdir, p + ".c")):
            problems.append(f"interfaces/{p}/{p}.c: missing (the module program {program})")
        for kind in ("connect-plug-", "disconnect-plug-"):
            if not os.path.isfile(os.path.join(root, "snap/hooks", kind + p)):
                problems.append(f"snap/hooks/{kind}{p}: missing")
    for n in mods:
        if n not in plugs:
            problems.append(f"snapcraft.yaml: module app {n} has no plug of that name in src/lib/plugs.c")
    for d in sorted(os.listdir(os.path.join(root, "interfaces"))):
        if os.path.isdir(os.path.join(root, "interfaces", d)) and d not in plugs:
            problems.append(f"interfaces/{d}/: no plug {d} in src/lib/plugs.c and snapcraft.yaml")
    for h in sorted(os.listdir(os.path.join(root, "snap/hooks"))):
        m = re.match(r"(dis)?connect-plug-(.+)$", h)
        if m and m.group(2) not in plugs:
            problems.append(f"snap/hooks/{h}: no plug {m.group(2)}")
    core = apps.get(CORE_APP) or {}
    if core.get("plugs") != CORE_PLUGS:
        problems.append(f"snapcraft.yaml: app {CORE_APP} must have exactly plugs: {CORE_PLUGS}")
    for n, a in apps.items():
        if n not in plugs and n not in (CORE_APP, CLI_APP):
            problems.append(f"snapcraft.yaml: app {n} is neither the core, the CLI nor a module app")
        for p in a.get("plugs") or []:
            if p in NEVER:
                problems.append(f"snapcraft.yaml: app {n} plugs {p}, which must never be requested")
    if doc.get("confinement") != "strict":
        problems.append("snapcraft.yaml: confinement must be strict")
    return problems


def manifest_sections(path):
    sections, cur = {}, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"##\s+(.*)", line)
            if m:
                cur = m.group(1).strip()
                sections[cur] = []
            elif cur:
                sections[cur].append(line.rstrip("\n"))
    return {k: "\n".join(v).strip() for k, v in sections.items()}


def section(sections, *prefixes):
    for k, v in sections.items():
        for p in prefixes:
            if k.lower().startswith(p.lower()):
                return v
    return None


def store_request(root):
    doc = load_snapcraft(os.path.join(root, "snapcraft.yaml"))
    table = plug_table(root)
    out = []
    missing = []
    out.append(f"# Auto-connect request: {doc['name']}")
    out.append("")
    out.append(f"{doc['name']} {doc['version']} ({doc['confinement']} confinement, base {doc['base']}) asks for "
               "auto-connection of the plugs below. " + doc["summary"] + ".")
    out.append("")
    out.append("Every plug is held by exactly one small module process, which is its own app listing only "
               "that plug, so each module's AppArmor/seccomp profile has that plug's rules and nothing "
               f"else. The core ({CORE_APP}) plugs network-bind (its API socket) and network (outbound HTTP(S) "
               "to OpenStack Placement and Keystone, only when placement-url is set, to register the host as a "
               "resource provider; both interfaces auto-connect and grant no capability) and does no "
               "privileged work. A module "
               "runs only while its plug is connected (the connect/disconnect-plug hooks enable and stop its "
               "app), drops every capability but those listed, sets no_new_privs and serves a fixed table of "
               "entrypoints that take identifiers (UUIDs, MACs, MTUs), never paths or device names.")
    out.append("")
    out.append("| plug | app | what it is used for | capabilities kept |")
    out.append("| --- | --- | --- | --- |")
    bodies = []
    for p, program in table:
        path = os.path.join(root, "interfaces", p, "MANIFEST.md")
        if not os.path.isfile(path):
            missing.append(p)
            continue
        s = manifest_sections(path)
        what = section(s, "What it does")
        why = section(s, "Why the", "Why ")
        caps = section(s, "Capabilities")
        eps = section(s, "Entrypoints")
        for name, val in (("What it does", what), ("Why the plug is needed", why), ("Capabilities", caps),
                          ("Entrypoints", eps)):
            if not val:
                missing.append(f"{p} (section '{name}')")
        if not (what and why and caps and eps):
            continue
        first = re.sub(r"\s+", " ", what.split("\n\n")[0])
        kept = re.search(r"Kept:\s*\**([^.*\n]+)", caps)
        out.append(f"| `{p}` | `{doc['name']}.{p}` ({program}) | {first[:160]}{'…' if len(first) > 160 else ''} | "
                   f"{kept.group(1).strip() if kept else 'see below'} |")
        bodies.append((p, program, what, eps, caps, why))
    if missing:
        raise SystemExit("store-request: manifests missing or incomplete: " + ", ".join(missing))
    out.append("")
    for p, program, what, eps, caps, why in bodies:
        out.append(f"## {p}")
        out.append("")
        out.append("### Why the plug is needed")
        out.append(why)
        out.append("")
        out.append("### What the module does")
        out.append(what)
        out.append("")
        out.append("### Entrypoints")
        out.append(eps)
        out.append("")
        out.append("### Capabilities")
        out.append(caps)
        out.append("")
    out.append("## Plugs we do not request")
    out.append("")
    for p, why in NEVER.items():
        out.append(f"- `{p}`: not requested: {why}.")
    out.append("")
    out.append("Each module's test workload is traced (strace, following forks) in our test suite and every "
               "file, socket, netlink family and capability it uses is checked against its plug's policy plus "
               "snapd's default template; `nova-hypervisor explain-denial` maps any AppArmor/seccomp denial "
               "line to the interface that would grant it.")
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) in (4, 5) and argv[1] == "snap-yaml":
        sys.stdout.write(snap_yaml(argv[2], argv[3], argv[4] if len(argv) == 5 else None))
        return 0
    if len(argv) == 3 and argv[1] == "version":
        print(load_snapcraft(argv[2])["version"])
        return 0
    if len(argv) in (2, 3) and argv[1] == "check":
        problems = check(argv[2] if len(argv) == 3 else ".")
        for p in problems:
            print(f"snap-consistency: {p}", file=sys.stderr)
        if problems:
            print(f"snap-consistency: FAILED ({len(problems)} problems)", file=sys.stderr)
            return 1
        print("snap-consistency: snapcraft.yaml, module apps, hooks, src/lib/plugs.c and interfaces/*/ agree")
        return 0
    if len(argv) in (2, 3) and argv[1] == "store-request":
        sys.stdout.write(store_request(argv[2] if len(argv) == 3 else "."))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
