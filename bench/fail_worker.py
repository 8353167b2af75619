#!/usr/bin/env python3
"""A Gearman worker that fails every job it gets (WORK_FAIL), as fast as the
server hands them out, and exits once the server has none left (NO_JOB).
Used by bench/policies.sh to put many jobs into their retry backoff.

Usage: fail_worker.py HOST PORT FUNCTION
Prints how many jobs it failed."""
import socket
import struct
import sys

REQ = b"\0REQ"
CAN_DO, GRAB_JOB, WORK_FAIL = 1, 9, 14
NO_JOB, JOB_ASSIGN, NOOP = 10, 11, 6


def packet(kind, *args):
    body = b"\0".join(args)
    return REQ + struct.pack(">II", kind, len(body)) + body


def main():
    host, port, function = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
    sock = socket.create_connection((host, port))
    sock.sendall(packet(CAN_DO, function) + packet(GRAB_JOB))
    buf = b""
    failed = 0
    while True:
        while len(buf) < 12:
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise SystemExit("the server closed the connection")
            buf += chunk
        kind, size = struct.unpack(">II", buf[4:12])
        while len(buf) < 12 + size:
            buf += sock.recv(1 << 16)
        body, buf = buf[12:12 + size], buf[12 + size:]
        if kind == JOB_ASSIGN:
            handle = body.split(b"\0", 1)[0]
            sock.sendall(packet(WORK_FAIL, handle) + packet(GRAB_JOB))
            failed += 1
        elif kind == NO_JOB:
            break
        elif kind == NOOP:
            sock.sendall(packet(GRAB_JOB))
        else:
            raise SystemExit(f"unexpected packet type {kind}")
    print(failed)


if __name__ == "__main__":
    main()
