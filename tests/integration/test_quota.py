"""IMAP quota warnings in tegamid against the harness' real Dovecot with its quota plugin.

The sandbox is started with quota_kib: Dovecot loads quota + imap_quota (the QUOTA capability),
and only harness.QUOTA_USER gets a storage limit (its userdb quota_rule); everybody else is
unlimited. tegamid syncs that user's account (GETQUOTAROOT INBOX once per sync) and must emit the
D-Bus QuotaWarning exactly once when usage crosses quota_warn_percent (default 90), never again
while it stays above, and once more only after it fell below and crossed again. The server's own
GETQUOTAROOT answer (over imaplib) is the reference for what tegamid should have seen.
"""
import imaplib
import json
import os
import queue
import ssl
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "harness"))
from harness import QUOTA_USER, Sandbox  # noqa: E402
from tegami_bus import TEGAMI, Bus, Daemon, write_config  # noqa: E402

LIMIT_KIB = 100


@pytest.fixture(scope="module")
def qsb():
    sb = Sandbox(postfix=False, quota_kib=LIMIT_KIB).start()
    yield sb
    sb.stop()


def message(i):
    # About 4 KiB each as Dovecot counts it: 23 of them reach 90 % of 100 KiB.
    return ("From: Tester <tester@example.net>\nTo: <%s>\nSubject: quota %d\nMessage-ID: <quota-%d-%s@example.net>\n\n"
            % (QUOTA_USER, i, i, os.urandom(6).hex())).encode() + (b"x" * 75 + b"\n") * 50


def imap(sb):
    m = imaplib.IMAP4_SSL(sb.host, sb.ports["imaps"], ssl_context=ssl.create_default_context(cafile=sb.ca_file))
    m.login(QUOTA_USER, sb.users[QUOTA_USER])
    return m


def server_quota(sb):
    """(used, limit) in KiB as Dovecot reports them."""
    m = imap(sb)
    try:
        typ, _ = m._simple_command("GETQUOTAROOT", "INBOX")
        assert typ == "OK"
        line = m.untagged_responses["QUOTA"][-1].decode()
        storage = line[line.index("(STORAGE ") + 9:].rstrip(")").split()
        return int(storage[0]), int(storage[1])
    finally:
        m.logout()


def expunge(sb, n):
    m = imap(sb)
    try:
        m.select("INBOX")
        m.store("1:%d" % n, "+FLAGS.SILENT", "(\\Deleted)")
        m.expunge()
    finally:
        m.logout()


class World:
    def __init__(self, sb, tmp_path):
        cfg = write_config(str(tmp_path / "daemon.ini"), (
            "[store]\nkey = file\n\n[account home]\naddress = %s\npassword = %s\nimap = imaps://%s:%d\n"
            "ca_file = %s\npoll_interval = 3600\n"
            % (QUOTA_USER, sb.users[QUOTA_USER], sb.host, sb.ports["imaps"], sb.ca_file)))
        self.sb, self.bus = sb, Bus()
        self.daemon = Daemon(self.bus.env, cfg, str(tmp_path / "data"))
        self.daemon.wait_for("imap: ", timeout=30)  # the first sync is over
        self.watch = subprocess.Popen([TEGAMI, "--json", "watch"], env=self.bus.env, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True)
        self.signals, self.warnings = queue.Queue(), []
        threading.Thread(target=lambda: [self.signals.put(json.loads(l)) for l in self.watch.stdout],
                         daemon=True).start()
        time.sleep(0.5)  # the watcher's match rules are in place

    def tegami(self, *args):
        return subprocess.run([TEGAMI, *args], env=self.bus.env, capture_output=True, text=True, timeout=60)

    def status(self):
        r = self.tegami("--json", "status")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["accounts"][0]

    def settle(self):
        """Syncs until tegamid's Quota property is what the server says now; returns it (bytes)."""
        used, limit = server_quota(self.sb)
        deadline = time.time() + 30
        while True:
            r = self.tegami("sync", "home", "--wait")
            assert r.returncode == 0, r.stdout + r.stderr
            q = self.status()["quota"]
            if q == {"used": used * 1024, "limit": limit * 1024}:
                break
            assert time.time() < deadline, (q, used, limit)
        # Every signal of those syncs is in by now (SyncFinished comes after QuotaWarning).
        time.sleep(0.3)
        while True:
            try:
                ev = self.signals.get_nowait()
            except queue.Empty:
                break
            if ev["signal"] == "QuotaWarning":
                self.warnings.append(ev["args"])
        return q

    def deliver(self, first, n):
        for i in range(first, first + n):
            self.sb.deliver(QUOTA_USER, message(i))

    def close(self):
        self.watch.terminate()
        self.watch.wait(timeout=5)
        rc = self.daemon.stop()
        self.bus.close()
        return rc


def test_quota_warning_once_per_crossing(qsb, tmp_path):
    w = World(qsb, tmp_path)
    try:
        limit = LIMIT_KIB * 1024
        w.deliver(0, 10)
        q = w.settle()
        assert q["limit"] == limit and 0 < q["used"] < 0.9 * limit, q
        assert w.warnings == [], w.warnings

        # Crossing 90 %: one warning naming the account with used and limit.
        w.deliver(10, 13)
        q = w.settle()
        assert q["used"] >= 0.9 * limit, q
        assert w.warnings == [["home", q["used"], limit]], w.warnings
        text = w.tegami("status").stdout
        assert "quota %d%% (%d of %d KiB)" % (q["used"] * 100 // limit, q["used"] // 1024, LIMIT_KIB) in text, text

        # Still above, more mail and a sync with no change: no second warning.
        w.deliver(23, 1)
        q = w.settle()
        assert 0.9 * limit <= q["used"] < limit, q
        w.tegami("sync", "home", "--wait")
        w.settle()
        assert len(w.warnings) == 1, w.warnings

        # Falls below (another device deletes mail): nothing; crosses again: the second warning.
        expunge(qsb, 10)
        q = w.settle()
        assert q["used"] < 0.9 * limit, q
        assert len(w.warnings) == 1, w.warnings
        w.deliver(24, 10)
        q = w.settle()
        assert q["used"] >= 0.9 * limit, q
        assert w.warnings[1:] == [["home", q["used"], limit]], w.warnings
    finally:
        rc = w.close()
    assert rc == 0
    assert any("at or above quota_warn_percent = 90" in l for l in w.daemon.seen + list(w.daemon.lines.queue)), \
        w.daemon.seen[-20:]


def test_unlimited_user_has_no_quota(qsb, tmp_path):
    """alice (no quota_rule) on the same server: GETQUOTAROOT says no quota; nothing is shown or signalled."""
    cfg = write_config(str(tmp_path / "daemon.ini"), (
        "[store]\nkey = file\n\n[account home]\naddress = alice@example.org\npassword = %s\nimap = imaps://%s:%d\n"
        "ca_file = %s\npoll_interval = 3600\n"
        % (qsb.users["alice@example.org"], qsb.host, qsb.ports["imaps"], qsb.ca_file)))
    bus = Bus()
    d = Daemon(bus.env, cfg, str(tmp_path / "data"))
    try:
        d.wait_for("imap: ", timeout=30)
        r = subprocess.run([TEGAMI, "--json", "status"], env=bus.env, capture_output=True, text=True, timeout=30)
        assert json.loads(r.stdout)["accounts"][0]["quota"] == {"used": 0, "limit": 0}, r.stdout
    finally:
        rc = d.stop()
        bus.close()
    assert rc == 0
