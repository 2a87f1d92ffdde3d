#!/usr/bin/env python3
"""Stall probe for `make soak`: every 50 ms, until killed, reads how long
each PostgreSQL backend and each thread of PIDS (the proxy, wrk) waited
on a run queue (/proc/PID/schedstat, field 2) and how much time the
hypervisor stole from each virtual CPU (/proc/stat). It writes to OUT

    HH:MM:SS.mmm wait PID COMM WAITED_MS RAN_MS   a task that waited over
                                                   THRESHOLD_MS (default 50)
                                                   on a run queue in one step
    HH:MM:SS.mmm steal cpuN MS                    steal of 20 ms or more
    HH:MM:SS.mmm late MS                          the probe itself woke late

so a statement PostgreSQL logged as slow can be matched by time and pid:
waiting for a CPU the guest gave to others, or its CPU taken by the host."""
import os, signal, sys, time

out_path = sys.argv[1]
watched = [int(p) for p in sys.argv[2].split(",") if p] if len(sys.argv) > 2 else []
threshold_ns = (float(sys.argv[3]) if len(sys.argv) > 3 else 50) * 1e6
STEP = 0.05
hz = os.sysconf("SC_CLK_TCK")
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


def tasks():
    """(tid, comm) of every postgres process and every thread of `watched`."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % pid) as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm == "postgres":
            found.append((pid, comm, "/proc/%s/schedstat" % pid))
    for pid in watched:
        try:
            for tid in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                    found.append((tid, f.read().strip(), "/proc/%d/task/%s/schedstat" % (pid, tid)))
        except OSError:
            pass
    return found


def steal():
    with open("/proc/stat") as f:
        return [int(l.split()[8]) for l in f if l.startswith("cpu") and l[3].isdigit()]


def stamp():
    wall = time.time()
    return "%s.%03d" % (time.strftime("%H:%M:%S", time.gmtime(wall)), int(wall * 1000) % 1000)


with open(out_path, "w", buffering=1) as out:
    last = {}
    last_steal = steal()
    known, refreshed = [], 0.0
    before = time.monotonic()
    while True:
        time.sleep(STEP)
        now = time.monotonic()
        if now - before > STEP + 0.05:
            out.write("%s late %.0f\n" % (stamp(), (now - before - STEP) * 1000))
        before = now
        if now - refreshed > 1:
            known, refreshed = tasks(), now
        for tid, comm, path in known:
            try:
                with open(path) as f:
                    ran, waited = (int(x) for x in f.read().split()[:2])
            except (OSError, ValueError):
                continue
            prev = last.get(tid)
            last[tid] = (ran, waited)
            if prev and waited - prev[1] > threshold_ns:
                out.write("%s wait %s %s %.0f %.0f\n" % (stamp(), tid, comm, (waited - prev[1]) / 1e6, (ran - prev[0]) / 1e6))
        current = steal()
        for cpu, (a, b) in enumerate(zip(last_steal, current)):
            if (b - a) * 1000 / hz >= 20:
                out.write("%s steal cpu%d %.0f\n" % (stamp(), cpu, (b - a) * 1000 / hz))
        last_steal = current
