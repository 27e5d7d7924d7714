#!/usr/bin/env python3
"""Bytes on the wire per time window, from a header-only tcpdump capture.

    wire-bytes.py CAPTURE.pcap PORT WINDOWS

CAPTURE is `tcpdump -i lo -s 128 -w CAPTURE 'tcp port PORT'` (IPv4 on
loopback, Ethernet framing); WINDOWS has one line per window, "KEY T0 T1"
with T0 and T1 in seconds since the epoch (fractions allowed). For each
window, one line on stdout:

    KEY UP DOWN UP_RETRANS DOWN_RETRANS UP_PACKETS DOWN_PACKETS

UP counts TCP payload bytes sent to PORT, DOWN bytes sent from it, each
byte once: per connection and direction, only sequence space beyond the
highest sent so far counts, so a retransmitted segment adds to *_RETRANS,
not to UP or DOWN. That matters on a loaded machine: loopback TCP then
retransmits whole 64 KiB GSO segments (tail-loss probes fire while the
receiver waits for a CPU), which a packet counter would count again. A
packet belongs to the window its capture time falls in.
"""

import struct
import sys


def packets(path):
    """(time, sport, dport, seq, payload_len, syn) for each TCP/IPv4 packet."""
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24:
            return
        magic = struct.unpack("<I", head[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            endian = "<"
        else:
            endian = ">"
            magic = struct.unpack(">I", head[:4])[0]
        if magic not in (0xA1B2C3D4, 0xA1B23C4D):
            raise SystemExit("wire-bytes.py: %s is not a pcap file" % path)
        div = 1e9 if magic == 0xA1B23C4D else 1e6
        linktype = struct.unpack(endian + "I", head[20:24])[0]
        if linktype != 1:
            raise SystemExit("wire-bytes.py: link type %d, expected Ethernet (1): capture on lo" % linktype)
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            sec, frac, incl, orig = struct.unpack(endian + "IIII", rec)
            data = f.read(incl)
            if len(data) < 14 + 20 or struct.unpack("!H", data[12:14])[0] != 0x0800:
                continue
            ip = data[14:]
            ihl = (ip[0] & 0x0F) * 4
            if ip[9] != 6 or len(ip) < ihl + 20:
                continue
            total = struct.unpack("!H", ip[2:4])[0] or (orig - 14)
            tcp = ip[ihl:]
            sport, dport, seq = struct.unpack("!HHI", tcp[:8])
            thl = (tcp[12] >> 4) * 4
            syn = bool(tcp[13] & 0x02)
            yield sec + frac / div, sport, dport, seq, max(0, total - ihl - thl), syn


def main():
    if len(sys.argv) != 4:
        raise SystemExit("usage: wire-bytes.py CAPTURE.pcap PORT WINDOWS")
    port = int(sys.argv[2])
    windows = []
    for line in open(sys.argv[3]):
        if line.strip():
            key, t0, t1 = line.split()
            windows.append([key, float(t0), float(t1), 0, 0, 0, 0, 0, 0])
    top = {}  # (sport, dport) -> highest sequence number sent, unwrapped
    for t, sport, dport, seq, plen, syn in packets(sys.argv[1]):
        flow = (sport, dport)
        if syn:
            top[flow] = seq + 1
            continue
        if plen == 0:
            continue
        high = top.get(flow)
        if high is None:
            # The capture started after this connection did.
            high = top[flow] = seq
        # Unwrap the 32-bit sequence number near the highest one.
        end = high + ((seq + plen - high + (1 << 31)) % (1 << 32)) - (1 << 31)
        new = max(0, end - high)
        if new:
            top[flow] = end
        up = dport == port
        for w in windows:
            if w[1] <= t <= w[2]:
                if up:
                    w[3] += new
                    w[5] += plen - new
                    w[7] += 1
                else:
                    w[4] += new
                    w[6] += plen - new
                    w[8] += 1
                break
    for w in windows:
        print(" ".join(str(x) for x in [w[0]] + w[3:]))


if __name__ == "__main__":
    main()
