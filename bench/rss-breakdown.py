#!/usr/bin/env python3
"""rss-breakdown.py NAME=PID... - what each process's resident memory is made of, from
/proc/PID/smaps (bench/footprint prints it):

  text     file pages never written: code and read-only data of the program and of each
           library, shared with every process mapping the same file (clean)
  reloc    file-backed pages this process wrote: relocations (.data.rel.ro, the GOT) and
           .data of the program and its libraries (private dirty of a file mapping)
  heap     [heap]: malloc's main arena
  anon     other anonymous memory: .bss, malloc's mmap'd blocks and thread arenas, thread
           stacks (a thread's stack is an anonymous mapping)
  stack    the main thread's [stack]
  other    vdso, vvar and the like

With -v, the largest mappings (by file) of each process too."""
import os
import sys


def parse(pid):
    rows = []  # (name, kind, rss_kib, dirty_kib)
    cur = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if "-" in parts[0] and len(parts) >= 5 and not parts[0].endswith(":"):
                path = parts[5] if len(parts) >= 6 else ""
                cur = {"path": path, "rss": 0, "dirty": 0, "anon": 0}
                rows.append(cur)
            elif parts[0] == "Rss:":
                cur["rss"] = int(parts[1])
            elif parts[0] in ("Private_Dirty:", "Shared_Dirty:"):
                cur["dirty"] += int(parts[1])
            elif parts[0] == "Anonymous:":
                cur["anon"] = int(parts[1])
    return rows


def classify(rows):
    total = {"text": 0, "reloc": 0, "heap": 0, "anon": 0, "stack": 0, "other": 0}
    by_file = {}
    for r in rows:
        p = r["path"]
        if p == "[heap]":
            total["heap"] += r["rss"]
        elif p == "[stack]":
            total["stack"] += r["rss"]
        elif p.startswith("/") and not p.startswith("/dev/") and not p.startswith("/memfd:"):
            clean = r["rss"] - r["dirty"]
            total["text"] += clean
            total["reloc"] += r["dirty"]
            name = os.path.basename(p)
            t = by_file.setdefault(name, [0, 0])
            t[0] += clean
            t[1] += r["dirty"]
        elif p == "" or p.startswith("[anon") or p.startswith("/dev/") or p.startswith("/memfd:"):
            total["anon"] += r["rss"]
        else:
            total["other"] += r["rss"]
    return total, by_file


def main():
    args = sys.argv[1:]
    verbose = bool(args) and args[0] == "-v"
    if verbose:
        args = args[1:]
    cols = ["text", "reloc", "heap", "anon", "stack", "other"]
    print(f"{'process':<26} " + " ".join(f"{c:>7}" for c in cols) + "   (KiB of VmRSS)")
    for a in args:
        name, pid = a.split("=", 1)
        try:
            total, by_file = classify(parse(pid))
        except OSError as e:
            print(f"{name:<26} (cannot read: {e})")
            continue
        print(f"{name:<26} " + " ".join(f"{total[c]:>7}" for c in cols))
        if verbose:
            top = sorted(by_file.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))[:8]
            print("    " + ", ".join(f"{n} {c}+{d}" for n, (c, d) in top) + "  (file: clean+written KiB)")


main()
