#!/usr/bin/env python3
"""A small UDP flow for the SVR end-to-end test.

  udp_flow.py serve ADDR PORT SECONDS   echo datagrams back for SECONDS
  udp_flow.py send ADDR PORT COUNT SIZE send COUNT datagrams of SIZE bytes (starting with the
                                        marker SVR-MARKER-UDP), print how many echoes came back
  udp_flow.py stream ADDR PORT COUNT RATE PER_FLOW
                                        send COUNT numbered datagrams at RATE per second, a new
                                        source port (a new SVR session) every PER_FLOW of them,
                                        collect the echoes, print "sent=N received=M lost=K
                                        flows=F" and the numbers of the lost ones
  udp_flow.py stream ADDR PORT COUNT RATE PER_FLOW SIZE [LOG]
                                        the same with SIZE-byte datagrams (default 200; the
                                        first 20 of each flow are 200 bytes at most); LOG
                                        gets one line "N SENT RECEIVED" (unix times) per echo
"""
import socket
import sys
import time

MARKER = b"SVR-MARKER-UDP-"


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def serve(addr, port, seconds):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.bind((addr, port))
    s.settimeout(0.2)
    end = time.time() + seconds
    while time.time() < end:
        try:
            data, peer = s.recvfrom(65535)
        except socket.timeout:
            continue
        s.sendto(data, peer)


def send(addr, port, count, size):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.settimeout(1.0)
    got = 0
    for i in range(count):
        msg = (MARKER + str(i).encode()).ljust(size, b".")
        s.sendto(msg, (addr, port))
        try:
            data, _ = s.recvfrom(65535)
            if data == msg:
                got += 1
        except socket.timeout:
            pass
        time.sleep(0.01)
    print(got)


def stream(addr, port, count, rate, per_flow, size=200, log=None):
    import select

    socks = []
    got = set()
    sent_at = {}
    logf = open(log, "w") if log else None
    start = time.monotonic()

    def drain(timeout):
        live = [s for s in socks]
        r, _, _ = select.select(live, [], [], timeout)
        for s in r:
            while True:
                try:
                    data = s.recv(65535, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                if data.startswith(MARKER):
                    n = int(data[len(MARKER):].split(b".")[0])
                    if logf and n not in got:
                        logf.write(f"{n} {sent_at.get(n, 0):.6f} {time.time():.6f}\n")
                    got.add(n)

    for i in range(count):
        if i % per_flow == 0:
            s = socket.socket(family(addr), socket.SOCK_DGRAM)
            s.setblocking(False)
            socks.append(s)
        # The first packets of a session carry metadata (up to 11 for UDP): keep the first 20
        # small so that a large SIZE still fits the WAN MTU with metadata on.
        msg = (MARKER + str(i).encode() + b".").ljust(size if i % per_flow >= 20 else min(size, 200), b".")
        sent_at[i] = time.time()
        try:
            socks[-1].sendto(msg, (addr, port))
        except OSError:
            pass  # e.g. EMSGSIZE after an ICMP too-big: counted as lost
        due = start + (i + 1) / rate
        while True:
            left = due - time.monotonic()
            if left <= 0:
                break
            drain(left)
    end = time.monotonic() + 2.0
    while len(got) < count and time.monotonic() < end:
        drain(0.1)
    if logf:
        logf.close()
    lost = sorted(set(range(count)) - got)
    print(f"sent={count} received={len(got)} lost={len(lost)} flows={len(socks)}")
    if lost:
        print("lost:", " ".join(map(str, lost[:50])))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    elif sys.argv[1] == "stream":
        stream(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]),
               int(sys.argv[7]) if len(sys.argv) > 7 else 200, sys.argv[8] if len(sys.argv) > 8 else None)
    else:
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
