#!/usr/bin/env python3
"""A small UDP flow for the SVR end-to-end test.

  udp_flow.py serve ADDR PORT SECONDS   echo datagrams back for SECONDS
  udp_flow.py send ADDR PORT COUNT SIZE send COUNT datagrams of SIZE bytes (starting with the
                                        marker SVR-MARKER-UDP), print how many echoes came back
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


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
