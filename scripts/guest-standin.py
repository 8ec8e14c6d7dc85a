#!/usr/bin/env python3
"""guest-standin.py - stand in for QEMU + a guest on an instance's tap.

Where no guest OS can run (libvirt's test:///default driver starts no QEMU),
this process does what QEMU does with the tap nova-hypervisor created: it
opens the tap's queue (TUNSETIFF on the existing device, IFF_TAP|IFF_NO_PI, as
QEMU's -netdev tap,ifname=... does), which gives the tap its carrier, and
relays every frame between that queue and a veth pair whose other end is the
"guest NIC" inside a network namespace of its own (a real kernel TCP/IP stack
with the port's MAC, IP and MTU). Nothing of the product is bypassed: the tap,
its OVS port, iface-id and the OVN binding are exactly what nova-hypervisor
made; only the virtual machine is replaced.

usage: guest-standin.py TAP RELAY_IF
  run in the namespace of the tap; RELAY_IF is the host end of the veth pair
  (the guest end is set up by the caller). Runs until SIGTERM.
  STANDIN_WAIT_TAP=1: wait for the tap to appear first (as QEMU opens it when
  the domain starts), checking every millisecond (a test stand-in, not daemon code).
  STANDIN_REPORT_SRC=IP: print "first-from IP <unix time>" when the first IPv4
  frame from IP comes out of the tap (bench/multihost).
"""
import fcntl
import os
import select
import signal
import socket
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    tap, relay_if = sys.argv[1], sys.argv[2]
    report_src = os.environ.get("STANDIN_REPORT_SRC")
    report_src = socket.inet_aton(report_src) if report_src else None
    if os.environ.get("STANDIN_WAIT_TAP") == "1":
        print(f"guest-standin: waiting for {tap}", flush=True)
        while not os.path.exists(f"/sys/class/net/{tap}"):
            time.sleep(0.001)
    tap_fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    for attempt in range(5000):
        try:
            fcntl.ioctl(tap_fd, TUNSETIFF, struct.pack("16sH", tap.encode(), IFF_TAP | IFF_NO_PI))
            break
        except OSError:
            # EBUSY while network-control still holds the tap it is creating
            if attempt == 4999 or os.environ.get("STANDIN_WAIT_TAP") != "1":
                raise
            time.sleep(0.001)
    pkt = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    pkt.bind((relay_if, ETH_P_ALL))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"guest-standin: relaying {tap} <-> {relay_if}", flush=True)
    poller = select.poll()
    poller.register(tap_fd, select.POLLIN)
    poller.register(pkt.fileno(), select.POLLIN)
    while True:
        for fd, _ in poller.poll():
            if fd == tap_fd:
                # OVS -> tap -> (QEMU would hand it to the guest's NIC)
                frame = os.read(tap_fd, 65536)
                if report_src and frame[12:14] == b"\x08\x00" and frame[26:30] == report_src:
                    print(f"first-from {socket.inet_ntoa(report_src)} {time.time():.6f}", flush=True)
                    report_src = None
                try:
                    pkt.send(frame)
                except OSError:
                    pass
            else:
                # the guest's NIC sent a frame: into the tap, towards OVS
                frame, addr = pkt.recvfrom(65536)
                if addr[2] == PACKET_OUTGOING:
                    continue
                try:
                    os.write(tap_fd, frame)
                except OSError:
                    pass


if __name__ == "__main__":
    main()
