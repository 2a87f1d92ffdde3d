#!/usr/bin/env python3
"""Hiccup meter for `make soak`: sleeps 1 ms at a time until killed and
writes every wake-up later than THRESHOLD_MS (default 100) as
"HH:MM:SS.mmm late_ms" to OUT. Run at real-time priority, a late wake-up
means the machine itself stalled (a virtual machine paused, the kernel
busy), not that the load kept a process off the CPU."""
import signal, sys, time

out_path = sys.argv[1]
threshold = float(sys.argv[2]) / 1000 if len(sys.argv) > 2 else 0.1
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
with open(out_path, "w", buffering=1) as out:
    last = time.monotonic()
    while True:
        time.sleep(0.001)
        now = time.monotonic()
        late = now - last - 0.001
        if late > threshold:
            wall = time.time()
            out.write("%s.%03d %.0f\n" % (time.strftime("%H:%M:%S", time.gmtime(wall)), int(wall * 1000) % 1000, late * 1000))
        last = now
