#!/usr/bin/python3
"""Crash safety of the store's writer: kill -9 a process storing batches at
100 random moments, and after each kill check the store with the helper:
integrity_check ok, every batch the killed process saw committed is whole, and
no batch is half there. Usage: test-crash.py HELPER [KILLS]."""
import os
import random
import signal
import subprocess
import sys
import tempfile
import time


def main():
    helper = sys.argv[1]
    kills = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    rng = random.Random(int(os.environ.get("TEGAMI_CRASH_SEED", "20261126")))
    with tempfile.TemporaryDirectory(prefix="tegami-crash-") as d:
        db = os.path.join(d, "crash.db")
        total = 0
        for i in range(kills):
            p = subprocess.Popen([helper, "run", db], stdout=subprocess.PIPE)
            # Anywhere from mid-open (recovery, migrations) to deep in a run.
            time.sleep(rng.uniform(0.0, 0.3))
            p.send_signal(signal.SIGKILL)
            out, _ = p.communicate()
            if p.returncode != -signal.SIGKILL:
                print(f"kill {i}: helper ended by itself with {p.returncode}", file=sys.stderr)
                return 1
            reported = out.decode().split()
            total += len(reported)
            c = subprocess.run([helper, "check", db], input="\n".join(reported).encode(),
                               stdout=subprocess.PIPE)
            if c.returncode != 0:
                print(f"kill {i}: check failed after {len(reported)} reported batches", file=sys.stderr)
                return 1
            last = c.stdout.decode().strip()
        print(f"{kills} kills, {total} batches reported committed, all present; last check: {last}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
