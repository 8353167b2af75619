"""CPU time so far, for bench/web.sh: where the CPU of a watched run went.

    python3 bench/cpu_times.py SERVER_PID [WATCHER_PID]

Prints one JSON line of milliseconds (user + system, from /proc):
`server_web` (sprocketd's web port thread, named `sprocketd-web`),
`server` (all of sprocketd's threads), and `watcher` (the watcher script
and every process under it: chromedriver and Chromium's processes; 0
without a watcher). Two of these around a load give what each spent.
"""

import json
import os
import sys

TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def fields(path):
    """The fields of a /proc stat file after the command name, which may
    hold spaces and parentheses."""
    with open(path) as f:
        text = f.read()
    return text[:text.rindex(")")], text[text.rindex(")") + 2:].split()


def threads(pid):
    """(name, ms) for each thread of `pid`."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            head, rest = fields(f"/proc/{pid}/task/{tid}/stat")
        except OSError:  # the thread ended meanwhile
            continue
        yield head[head.index("(") + 1:], (int(rest[11]) + int(rest[12])) * TICK_MS


def tree(root):
    """`root` and all its descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                _, rest = fields(f"/proc/{entry}/stat")
            except OSError:
                continue
            children.setdefault(int(rest[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def process_ms(pid):
    """A process's own CPU time (its threads together)."""
    try:
        _, rest = fields(f"/proc/{pid}/stat")
    except OSError:
        return 0.0
    return (int(rest[11]) + int(rest[12])) * TICK_MS


def main():
    server = int(sys.argv[1])
    watcher = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] else None
    per_thread = list(threads(server))
    out = {
        "server_web": round(sum(ms for name, ms in per_thread if name == "sprocketd-web")),
        "server": round(process_ms(server)),
        "watcher": round(sum(process_ms(pid) for pid in tree(watcher))) if watcher else 0,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
