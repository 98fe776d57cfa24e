"""A private D-Bus session bus and a tegamid on it, for the integration tests."""
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import dbus
import dbus.bus

TEGAMID = os.environ.get("TEGAMID", "build/daemon/tegamid")
TEGAMI = os.environ.get("TEGAMI", "build/clients/tegami")

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={dir}</listen>
  <auth>EXTERNAL</auth>
  <servicedir>{dir}/services</servicedir>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


# ---- helpers ----

class Bus:
    """A private dbus-daemon of type session with its own service directory."""

    def __init__(self):
        # Short path: a Unix socket path must fit in 108 bytes.
        self.dir = tempfile.mkdtemp(prefix="tgbus")
        os.mkdir(os.path.join(self.dir, "services"))
        conf = os.path.join(self.dir, "bus.conf")
        with open(conf, "w") as f:
            f.write(BUS_CONFIG.format(dir=self.dir))
        base = {k: v for k, v in os.environ.items() if not k.startswith("DBUS_")}
        self.proc = subprocess.Popen(
            ["dbus-daemon", "--config-file", conf, "--nofork", "--print-address"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=base)
        self.address = self.proc.stdout.readline().strip()
        assert self.address, "dbus-daemon did not print its address"
        self.env = dict(base, DBUS_SESSION_BUS_ADDRESS=self.address)
        # A small ASan quarantine keeps RSS meaningful under -Db_sanitize=address.
        asan = self.env.get("ASAN_OPTIONS", "")
        self.env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "quarantine_size_mb=1"

    def connect(self):
        return dbus.bus.BusConnection(self.address)

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)


class Daemon:
    """One tegamid with its stderr pumped into a queue."""

    def __init__(self, env, cfg, data_dir, *extra):
        self.proc = subprocess.Popen([TEGAMID, "--config", cfg, "--data-dir", data_dir, *extra],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        self.lines = queue.Queue()
        self.seen = []

        def pump():
            for line in self.proc.stderr:
                self.lines.put(line.rstrip("\n"))
            self.lines.put(None)
        threading.Thread(target=pump, daemon=True).start()

    def wait_for(self, needle, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError(f"no line with {needle!r}; got {self.seen}")
            self.seen.append(line)
            if needle in line:
                return line

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=5)


def write_config(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    return path
