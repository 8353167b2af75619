"""Reads a background job's data, status and result with pygearman's
GearmanClient.submit_job on the server's function sprocket.result (the
job's handle as the data). Prints "DATA x" per data chunk, "STATUS n/d" for
the last status, then "COMPLETE x" or "STATE <state>" when it did not
complete.

Usage: python3 result.py HOST:PORT HANDLE
"""
import sys

import gearman


def text(v):
    return v.decode() if isinstance(v, bytes) else v


def main():
    server, handle = sys.argv[1], sys.argv[2]
    client = gearman.GearmanClient([server])
    req = client.submit_job("sprocket.result", handle, poll_timeout=15)
    for chunk in req.data_updates:
        print("DATA " + text(chunk))
    if req.status:
        print("STATUS %s/%s" % (req.status.get("numerator"), req.status.get("denominator")))
    if req.state == gearman.JOB_COMPLETE:
        print("COMPLETE " + text(req.result))
    else:
        print("STATE " + str(req.state))


if __name__ == "__main__":
    main()
