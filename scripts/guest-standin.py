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
"""
import fcntl
import os
import select
import signal
import socket
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    tap, relay_if = sys.argv[1], sys.argv[2]
    tap_fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    fcntl.ioctl(tap_fd, TUNSETIFF, struct.pack("16sH", tap.encode(), IFF_TAP | IFF_NO_PI))
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
