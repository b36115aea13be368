#!/usr/bin/env python3
"""A userspace impairment forwarder: delay, jitter and loss per direction between two veths.

Test equipment for testbed/multipath.sh (this kernel has no netem). It runs inside an "ISP"
namespace whose two interfaces A and B are NOT in a bridge, reads every frame arriving on one
with an AF_PACKET raw socket and writes it out of the other after the direction's delay:

    frame in on A  --(a2b: loss %, delay ms, jitter ms)-->  frame out on B
    frame in on B  --(b2a: loss %, delay ms, jitter ms)-->  frame out on A

  * loss: each frame is dropped with probability loss/100 (independent, like numgen random).
  * delay and jitter: a frame is due delay + uniform(-jitter, +jitter) ms after arrival
    (at least 0). Order within a direction is kept: a frame is never sent before the one
    ahead of it (so jitter shows as variation of the delay, never as reordering).
  * bounded queue: at most --queue frames wait per direction; more are dropped and counted.

Run-time settings come from a control file (--control), re-read whenever it changes:

    a2b loss=10 delay=100 jitter=5
    b2a loss=0 delay=0 jitter=0

(missing keys are 0; write it atomically: to a temporary file, then rename). The counters are
printed on SIGUSR1 and at exit; SIGTERM and SIGINT exit cleanly (queued frames are dropped).

    impair.py --a to-a --b to-b --control /path/link1.ctl [--queue 4096] [--seed N]
"""
import argparse
import heapq
import os
import random
import select
import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
DIRS = ("a2b", "b2a")


def log(msg):
    print(f"[impair] {msg}", file=sys.stderr, flush=True)


def parse_control(text):
    """{'a2b': {'loss':..,'delay':..,'jitter':..}, 'b2a': {...}}; unknown lines are errors."""
    conf = {d: {"loss": 0.0, "delay": 0.0, "jitter": 0.0} for d in DIRS}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if words[0] not in DIRS:
            raise ValueError(f"line {n}: direction {words[0]!r} is not a2b or b2a")
        for w in words[1:]:
            k, _, v = w.partition("=")
            if k not in ("loss", "delay", "jitter"):
                raise ValueError(f"line {n}: unknown key {k!r}")
            x = float(v)
            if x < 0 or (k == "loss" and x > 100):
                raise ValueError(f"line {n}: {k}={v} out of range")
            conf[words[0]][k] = x
    return conf


class Direction:
    def __init__(self, name, rx, tx, limit):
        self.name, self.rx, self.tx, self.limit = name, rx, tx, limit
        self.loss = self.delay = self.jitter = 0.0
        self.queue = []          # heap of (due, seq, frame)
        self.last_due = 0.0
        self.counts = {"in": 0, "out": 0, "loss": 0, "queue_full": 0, "tx_error": 0}

    def set(self, c):
        self.loss, self.delay, self.jitter = c["loss"], c["delay"] / 1000.0, c["jitter"] / 1000.0

    def __str__(self):
        c = self.counts
        return (f"{self.name} loss={self.loss:g}% delay={self.delay * 1000:g}ms jitter={self.jitter * 1000:g}ms "
                f"in={c['in']} out={c['out']} dropped_loss={c['loss']} dropped_queue_full={c['queue_full']} "
                f"tx_error={c['tx_error']} queued={len(self.queue)}")


def open_sock(ifname):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((ifname, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.setblocking(False)
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="interface on the router-a side")
    ap.add_argument("--b", required=True, help="interface on the router-b side")
    ap.add_argument("--control", required=True, help="control file (see above)")
    ap.add_argument("--queue", type=int, default=4096, help="frames waiting per direction at most")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    sa, sb = open_sock(args.a), open_sock(args.b)
    dirs = {"a2b": Direction("a2b", sa, sb, args.queue), "b2a": Direction("b2a", sb, sa, args.queue)}
    by_rx = {sa.fileno(): dirs["a2b"], sb.fileno(): dirs["b2a"]}

    state = {"stop": False, "dump": False}
    signal.signal(signal.SIGTERM, lambda *_: state.update(stop=True))
    signal.signal(signal.SIGINT, lambda *_: state.update(stop=True))
    signal.signal(signal.SIGUSR1, lambda *_: state.update(dump=True))

    mtime = None

    def reload():
        nonlocal mtime
        try:
            st = os.stat(args.control)
        except FileNotFoundError:
            return
        if st.st_mtime_ns == mtime:
            return
        mtime = st.st_mtime_ns
        try:
            with open(args.control) as f:
                conf = parse_control(f.read())
        except (OSError, ValueError) as e:
            log(f"control file ignored: {e}")
            return
        for d in DIRS:
            dirs[d].set(conf[d])
        log("settings: " + "; ".join(f"{d} loss={conf[d]['loss']:g} delay={conf[d]['delay']:g} "
                                      f"jitter={conf[d]['jitter']:g}" for d in DIRS))

    reload()
    log(f"forwarding {args.a} <-> {args.b} (pid {os.getpid()})")
    poller = select.poll()
    poller.register(sa, select.POLLIN)
    poller.register(sb, select.POLLIN)
    seq = 0
    next_reload = time.monotonic() + 0.1

    while not state["stop"]:
        now = time.monotonic()
        # Send everything due.
        for d in dirs.values():
            while d.queue and d.queue[0][0] <= now:
                _, _, frame = heapq.heappop(d.queue)
                try:
                    d.tx.send(frame)
                    d.counts["out"] += 1
                except OSError:
                    d.counts["tx_error"] += 1
        if now >= next_reload:
            reload()
            next_reload = now + 0.1
        if state["dump"]:
            state["dump"] = False
            for d in dirs.values():
                log(str(d))
        due = [d.queue[0][0] for d in dirs.values() if d.queue]
        timeout = min([next_reload] + due) - time.monotonic()
        try:
            events = poller.poll(max(0, int(timeout * 1000) + (1 if due else 0)))
        except InterruptedError:
            continue
        for fd, _ in events:
            d = by_rx[fd]
            for _ in range(256):
                try:
                    frame, addr = d.rx.recvfrom(65535)
                except BlockingIOError:
                    break
                except OSError:      # ENETDOWN after the interface went down: keep going
                    break
                if addr[2] == PACKET_OUTGOING:   # our own transmissions on this interface
                    continue
                d.counts["in"] += 1
                if d.loss > 0 and rng.random() * 100 < d.loss:
                    d.counts["loss"] += 1
                    continue
                if d.delay == 0 and d.jitter == 0 and not d.queue:
                    try:
                        d.tx.send(frame)
                        d.counts["out"] += 1
                    except OSError:
                        d.counts["tx_error"] += 1
                    continue
                if len(d.queue) >= d.limit:
                    d.counts["queue_full"] += 1
                    continue
                t = time.monotonic()
                due_at = t + max(0.0, d.delay + (rng.uniform(-d.jitter, d.jitter) if d.jitter else 0.0))
                due_at = max(due_at, d.last_due)      # keep order within the direction
                d.last_due = due_at
                seq += 1
                heapq.heappush(d.queue, (due_at, seq, frame))

    for d in dirs.values():
        log("exit: " + str(d))
    sa.close()
    sb.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
