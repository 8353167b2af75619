"""pygearman (the maintained Python 3 fork of python-gearman) against a server.

Usage:
  python3 pygearman_scenarios.py worker HOST:PORT PREFIX
  python3 pygearman_scenarios.py client HOST:PORT PREFIX
  python3 pygearman_scenarios.py admin  HOST:PORT PREFIX

The worker registers PREFIX_rev (status 1/2, 2/2, then the reversed data)
and PREFIX_slow (sleeps 0.3 s, then echoes). The client and admin modes print
"ok - ..." per check and "PASS" at the end, and exit 1 on the first failure.
"""
import sys
import time

import gearman


def check(cond, what):
    if not cond:
        print("FAIL: " + what, file=sys.stderr, flush=True)
        sys.exit(1)
    print("ok - " + what, flush=True)


def as_text(v):
    return v.decode() if isinstance(v, bytes) else v


def run_worker(server, prefix):
    worker = gearman.GearmanWorker([server])
    worker.set_client_id(prefix + "-pyworker")

    def rev(w, job):
        w.send_job_status(job, 1, 2)
        w.send_job_status(job, 2, 2)
        return as_text(job.data)[::-1]

    def slow(w, job):
        time.sleep(0.3)
        return "slow:" + as_text(job.data)

    # pygearman decodes JOB_ASSIGN_UNIQ's function name as bytes and looks it
    # up as-is, so the task names must be registered as bytes.
    worker.register_task((prefix + "_rev").encode(), rev)
    worker.register_task((prefix + "_slow").encode(), slow)
    print("READY", flush=True)
    worker.work(poll_timeout=1.0)


def run_client(server, prefix):
    client = gearman.GearmanClient([server])

    req = client.submit_job(prefix + "_rev", "Hello Python", poll_timeout=10)
    check(req.complete and req.state == gearman.JOB_COMPLETE, "foreground submit_job completes: state=%s" % req.state)
    check(as_text(req.result) == "nohtyP olleH", "foreground result is reversed: %r" % (req.result,))

    reqs = client.submit_multiple_jobs(
        [dict(task=prefix + "_rev", data="job%d" % i) for i in range(5)], poll_timeout=10)
    check([as_text(r.result) for r in reqs] == ["%dboj" % i for i in range(5)],
          "submit_multiple_jobs: 5 results in order: %r" % ([r.result for r in reqs],))

    high = client.submit_job(prefix + "_rev", "hi", priority=gearman.PRIORITY_HIGH, poll_timeout=10)
    check(as_text(high.result) == "ih", "high priority foreground job")

    bg = client.submit_job(prefix + "_slow", "bg", background=True, wait_until_complete=False, poll_timeout=10)
    check(bg.job.handle, "background submit returns a handle: %r" % (bg.job.handle,))
    st = client.get_job_status(bg, poll_timeout=5)
    check(st.status["known"] is True, "get_job_status: the background job is known: %r" % (st.status,))
    deadline = time.time() + 10
    gone = False
    while time.time() < deadline:
        st = client.get_job_status(bg, poll_timeout=5)
        if not st.status["known"]:
            gone = True
            break
        time.sleep(0.05)
    check(gone, "get_job_status: unknown once the background job finished: %r" % (st.status,))

    nowait = client.submit_job(prefix + "_slow", "fg", wait_until_complete=False, poll_timeout=10)
    check(nowait.state == gearman.JOB_CREATED, "wait_until_complete=False returns after JOB_CREATED: %s" % nowait.state)
    done = client.wait_until_jobs_completed([nowait], poll_timeout=10)
    check(as_text(done[0].result) == "slow:fg", "wait_until_jobs_completed gets the result")


def run_admin(server, prefix):
    admin = gearman.GearmanAdminClient([server], poll_timeout=5)
    elapsed = admin.ping_server()
    check(isinstance(elapsed, float) and elapsed >= 0, "ping_server (binary ECHO_REQ on the admin connection): %r" % elapsed)

    status = admin.get_status()
    tasks = {s["task"]: s for s in status}
    check(prefix + "_rev" in tasks, "get_status lists %s_rev: %r" % (prefix, status))
    rev = tasks[prefix + "_rev"]
    check(rev["workers"] >= 1 and rev["queued"] == 0 and rev["running"] == 0,
          "get_status counts for %s_rev: %r" % (prefix, rev))

    workers = admin.get_workers()
    mine = [w for w in workers if w["client_id"] == prefix + "-pyworker"]
    check(len(mine) == 1, "get_workers finds the worker by client id: %r" % (workers,))
    check(set(mine[0]["tasks"]) == {prefix + "_rev", prefix + "_slow"}, "worker's tasks: %r" % (mine[0]["tasks"],))
    check(mine[0]["ip"] == "127.0.0.1", "worker's ip")

    # gearmand 1.1.20 ends a bare OK with CRLF and pygearman splits lines on LF
    # only, so it sees "OK\r" and raises. Sprocket copies gearmand's bytes, so
    # the same thing must happen with both servers: the reply is OK + CR.
    try:
        reply = admin.send_maxqueue(prefix + "_rev", 10)
        check(reply == "OK", "send_maxqueue answers OK")
    except gearman.errors.ProtocolError as e:
        check(str(e) == "Expected 'OK', received: OK\r", "send_maxqueue got gearmand's OK\\r\\n: %r" % str(e))
    admin = gearman.GearmanAdminClient([server], poll_timeout=5)
    check(admin.ping_server() >= 0, "ping again on a new admin connection")
    version = admin.get_version()
    check(isinstance(version, str) and len(version) > 0, "get_version: %r" % version)


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("worker", "client", "admin"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    mode, server, prefix = sys.argv[1:]
    if mode == "worker":
        run_worker(server, prefix)
    elif mode == "client":
        run_client(server, prefix)
    else:
        run_admin(server, prefix)
    print("PASS", flush=True)


if __name__ == "__main__":
    main()
