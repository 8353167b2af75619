"""Gives a Gearman server N functions, for bench/web.sh's `/metrics` rows.

    python3 bench/many_functions.py HOST PORT N

Over plain Gearman packets on two connections (a worker and a client), in
two stages; after each it prints a line and waits for one on stdin, so the
caller can measure in between:

1. `STAGE registered`: the worker has sent CAN_DO for `fn-00000` … and the
   client has submitted one background job to each, so every function has
   a worker and a queued job (every per-function gauge and counter).
2. `STAGE ended`: the worker has taken and completed those jobs and the
   client has submitted one more to each: every function also has ended
   jobs, so the server keeps its queue-wait and run-time histograms too.

The connections stay open until the last line on stdin (the worker must
stay registered while the caller measures).
"""

import socket
import struct
import sys

REQ, RES = b"\0REQ", b"\0RES"
CAN_DO, GRAB_JOB, NO_JOB, JOB_ASSIGN, WORK_COMPLETE, JOB_CREATED, NOOP, SUBMIT_JOB_BG = 1, 9, 10, 11, 13, 8, 6, 18
BATCH = 500


def packet(kind, *args):
    body = b"\0".join(args)
    return REQ + struct.pack(">II", kind, len(body)) + body


class Conn:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def read(self):
        """The next reply as (type, body), NOOPs skipped."""
        while True:
            while len(self.buf) < 12:
                self.fill()
            magic, kind, size = self.buf[:4], *struct.unpack(">II", self.buf[4:12])
            if magic != RES:
                raise RuntimeError(f"not a reply: {self.buf[:12]!r}")
            while len(self.buf) < 12 + size:
                self.fill()
            body, self.buf = self.buf[12:12 + size], self.buf[12 + size:]
            if kind != NOOP:
                return kind, body

    def fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise RuntimeError("the server closed the connection")
        self.buf += chunk


def submit_one_each(client, names):
    for start in range(0, len(names), BATCH):
        part = names[start:start + BATCH]
        client.send(b"".join(packet(SUBMIT_JOB_BG, n, b"", b"x") for n in part))
        for _ in part:
            kind, body = client.read()
            if kind != JOB_CREATED:
                raise RuntimeError(f"submit answered {kind}: {body!r}")


def work_all(worker, count):
    done = 0
    while done < count:
        want = min(BATCH, count - done)
        worker.send(packet(GRAB_JOB) * want)
        handles = []
        for _ in range(want):
            kind, body = worker.read()
            if kind == JOB_ASSIGN:
                handles.append(body.split(b"\0", 1)[0])
            elif kind != NO_JOB:
                raise RuntimeError(f"GRAB_JOB answered {kind}: {body!r}")
        if not handles:
            raise RuntimeError(f"no jobs left after {done} of {count}")
        worker.send(b"".join(packet(WORK_COMPLETE, h, b"ok") for h in handles))
        done += len(handles)


def main():
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    names = [f"fn-{i:05d}".encode() for i in range(n)]
    worker, client = Conn(host, port), Conn(host, port)
    worker.send(b"".join(packet(CAN_DO, name) for name in names))
    submit_one_each(client, names)
    print("STAGE registered", flush=True)
    sys.stdin.readline()
    work_all(worker, n)
    submit_one_each(client, names)
    print("STAGE ended", flush=True)
    sys.stdin.readline()


if __name__ == "__main__":
    main()
