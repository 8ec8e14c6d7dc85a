#!/usr/bin/python3
"""oslo-privsep-rtt - round-trip latency of one oslo.privsep entrypoint call.

The anchor for bench/privsep-rtt: the privilege-separation library nova uses
(Debian's python3-oslo.privsep), set up the way nova's privsep contexts are
(nova/privsep/__init__.py: a PrivContext with its own config section, a pypath
naming the context, the capabilities it keeps) and called the way nova's
entrypoints are (a decorated function whose body runs in the privileged
daemon, which derives the path it touches from the identifier it is given).

The entrypoint reads /sys/class/net/<device>/mtu: the same work as the
socketpair floor's callee (bench/anchors/socketpair-floor.c) and close to what
our tap_get does (one kernel query). The daemon is started with Method.FORK,
so neither privsep-helper nor rootwrap nor a config file is needed; the
config section gets oslo.config's defaults.

    /usr/bin/python3 bench/anchors/oslo-privsep-rtt.py [CALLS]    (root)

One warm-up call, then 5 batches of CALLS calls (default 2000). Prints
    oslo.privsep calls=N per_call_us_median=X min=Y max=Z
where X, Y, Z are the median, smallest and largest of the 5 batch means in
microseconds (the statistic bench/privsep-rtt-client.c prints for ours).
"""
import statistics
import sys
import time

from oslo_privsep import capabilities
from oslo_privsep import priv_context

BATCHES = 5
DEFAULT_CALLS = 2000
DEVICE = "lo"

# An entrypoint's module must start with the context's prefix; this file runs
# as __main__, so that is the prefix, and pypath names the context below.
net_admin_pctxt = priv_context.PrivContext(
    __name__,
    cfg_section="nova_bench_net_admin",
    pypath=__name__ + ".net_admin_pctxt",
    capabilities=[capabilities.CAP_NET_ADMIN],
)


@net_admin_pctxt.entrypoint
def get_link_mtu(device):
    """Privileged side: the MTU of network device DEVICE, read from sysfs."""
    if not device or "/" in device or device in (".", ".."):
        raise ValueError("bad device name %r" % (device,))
    with open("/sys/class/net/%s/mtu" % device, encoding="ascii") as mtu_file:
        return int(mtu_file.read())


def batch_mean_us(calls):
    """Wall-clock microseconds per call over CALLS calls."""
    start = time.perf_counter()
    for _ in range(calls):
        get_link_mtu(DEVICE)
    return (time.perf_counter() - start) / calls * 1e6


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and not argv[1].isdigit()):
        sys.stderr.write("usage: %s [CALLS]\n" % argv[0])
        return 1
    calls = int(argv[1]) if len(argv) == 2 else DEFAULT_CALLS
    if calls < 1:
        sys.stderr.write("oslo-privsep-rtt: CALLS must be >= 1\n")
        return 1
    net_admin_pctxt.start(method=priv_context.Method.FORK)
    try:
        mtu = get_link_mtu(DEVICE)  # warm-up: the daemon answers once first
        if mtu <= 0:
            sys.stderr.write("oslo-privsep-rtt: odd MTU %d for %s\n" % (mtu, DEVICE))
            return 1
        means = [batch_mean_us(calls) for _ in range(BATCHES)]
    finally:
        net_admin_pctxt.stop()
    print("oslo.privsep calls=%d per_call_us_median=%.1f min=%.1f max=%.1f"
          % (calls, statistics.median(means), min(means), max(means)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
