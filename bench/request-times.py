#!/usr/bin/python3
"""request-times.py - where the core's time goes, from an strace of it.

    strace -tt -T -xx -s 64 -e trace=sendto,sendmsg,recvfrom,recvmsg,epoll_wait,fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat,openat \
        -o FILE -p CORE_PID
    request-times.py FILE

Pairs each request frame the core sends to a module (type 2, on a module's
socket) with the reply frame that comes back (type 3, same socket, same id)
and prints, per entrypoint: count, the sum and the median of the time from
the send to the reply's receipt. Then the core's own time in the store's file
system calls (fsync, fdatasync, rename, unlink, openat), and how long it sat
in epoll_wait (idle) over the traced window. Frame layout: src/lib/proto.h.
Reads strace's text only; it starts and stops nothing.
"""
import re
import statistics
import sys

LINE = re.compile(r'^(?:\d+\s+)?(\d+):(\d+):(\d+\.\d+) (\w+)\((.*)\) += (-?\d+|\?)(?:.*<([\d.]+)>)?\s*$')
HEX = re.compile(r'"((?:\\x[0-9a-f]{2})+)')
FS_CALLS = ('fsync', 'fdatasync', 'rename', 'renameat', 'renameat2', 'unlink', 'unlinkat', 'openat')


def frame_header(args):
    """(type, id, name) of the first frame in a call's arguments, or None."""
    m = HEX.search(args)
    if not m:
        return None
    raw = bytes(int(h, 16) for h in m.group(1).split('\\x')[1:])
    if len(raw) < 17 or raw[0:4] != b'NOVA':
        return None
    ftype = int.from_bytes(raw[6:8], 'little')
    fid = int.from_bytes(raw[8:12], 'little')
    nlen = raw[16]
    name = raw[17:17 + nlen].decode('ascii', 'replace')
    return ftype, fid, name


def main(path):
    sent = {}                      # (fd, id) -> (t, name)
    times = {}                     # name -> [seconds]
    fs = {}                        # syscall -> [count, seconds]
    idle = 0.0
    first = last = None
    with open(path, encoding='utf-8', errors='replace') as f:
        for line in f:
            m = LINE.match(line.rstrip('\n'))
            if not m:
                continue
            h, mi, s, call, args, ret, dur = m.groups()
            t = int(h) * 3600 + int(mi) * 60 + float(s)
            d = float(dur) if dur else 0.0
            first = t if first is None else first
            last = t + d
            if call in FS_CALLS:
                c = fs.setdefault(call, [0, 0.0])
                c[0] += 1
                c[1] += d
                continue
            if call == 'epoll_wait':
                idle += d
                continue
            fd = args.split(',', 1)[0]
            hdr = frame_header(args)
            if not hdr or ret == '?' or int(ret) <= 0:
                continue
            ftype, fid, name = hdr
            if call in ('sendmsg', 'sendto') and ftype == 2:
                sent[(fd, fid)] = (t, name)
            elif call in ('recvfrom', 'recvmsg') and ftype == 3 and (fd, fid) in sent:
                t0, name0 = sent.pop((fd, fid))
                times.setdefault(name0, []).append(t + d - t0)
    if first is None:
        print('request-times: no system call lines in', path)
        return 1
    print(f'traced window {last - first:.2f} s; core idle in epoll_wait {idle:.2f} s')
    print(f'{"entrypoint":24} {"calls":>6} {"sum s":>8} {"median ms":>10} {"max ms":>8}')
    for name, v in sorted(times.items(), key=lambda kv: -sum(kv[1])):
        print(f'{name:24} {len(v):6} {sum(v):8.2f} {statistics.median(v) * 1000:10.1f} {max(v) * 1000:8.1f}')
    if sent:
        print(f'(no reply seen for {len(sent)} requests)')
    print('core in file system calls: ' +
          ', '.join(f'{k} {c} calls {s:.2f} s' for k, (c, s) in sorted(fs.items(), key=lambda kv: -kv[1][1])))
    return 0


if __name__ == '__main__':
    if len(sys.argv) != 2:
        print(__doc__.split('\n\n')[1], file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
