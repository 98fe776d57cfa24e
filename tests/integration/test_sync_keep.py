"""The IMAP sync's kept session (daemon/imap/sync-keep.c) in tegamid, against the harness' Dovecot.

A sync that ends well UNSELECTs and leaves its logged-in session for the next sync of the account,
which takes it after one NOOP: a push-started sync then costs no connect, TLS or SCRAM. The account
goes through Proxy, a plain loopback TCP proxy (`tls = none`, allowed for loopback) that counts
connections, tells which one is the kept session (the one that sent UNSELECT) and can make one
connection silent (a NAT mapping that died: bytes vanish both ways) or hang it up.
"""
import json
import os
import queue
import socket
import subprocess
import threading
import time

from tegami_bus import TEGAMI, Bus, Daemon, write_config

USER = "alice@example.org"


class Proxy:
    def __init__(self, target_port):
        self.target_port, self.pairs, self.lock = target_port, [], threading.Lock()
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.port = self.lsock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            s = socket.create_connection(("127.0.0.1", self.target_port))
            pair = {"c": c, "s": s, "up": b"", "silent": False}
            with self.lock:
                self.pairs.append(pair)
            threading.Thread(target=self._pipe, args=(c, s, pair, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(s, c, pair, False), daemon=True).start()

    def _pipe(self, a, b, pair, up):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                if up:
                    pair["up"] += data
                if not pair["silent"]:
                    b.sendall(data)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def kept(self):
        """The connections that ended a sync with UNSELECT (kept sessions)."""
        with self.lock:
            return [p for p in self.pairs if b"UNSELECT" in p["up"]]

    def hang_up(self, pair):
        for x in (pair["c"], pair["s"]):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.lsock.close()
        with self.lock:
            for p in self.pairs:
                self.hang_up(p)


def message(i):
    return ("From: Tester <tester@example.net>\nTo: <%s>\nSubject: keep %d\nMessage-ID: <keep-%d-%s@example.net>\n\n"
            "hello\n" % (USER, i, i, os.urandom(6).hex())).encode()


class World:
    def __init__(self, sb, tmp_path):
        self.sb, self.proxy = sb, Proxy(sb.ports["imap"])
        cfg = write_config(str(tmp_path / "daemon.ini"), (
            "[store]\nkey = file\n\n[account home]\naddress = %s\npassword = %s\nimap = imap://127.0.0.1:%d\n"
            "tls = none\npoll_interval = 3600\n" % (USER, sb.users[USER], self.proxy.port)))
        self.bus = Bus()
        self.daemon = Daemon(self.bus.env, cfg, str(tmp_path / "data"), "--log-level", "debug")
        self.daemon.wait_for("push: watching the server", timeout=30)
        if not any("folder(s) (" in l for l in self.daemon.seen):  # the first sync may end before push is up
            self.wait_summary()
        self.watch = subprocess.Popen([TEGAMI, "--json", "watch"], env=self.bus.env, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True)
        self.signals = queue.Queue()
        threading.Thread(target=lambda: [self.signals.put(json.loads(l)) for l in self.watch.stdout],
                         daemon=True).start()
        time.sleep(0.5)

    def wait_summary(self, timeout=30):
        return self.daemon.wait_for("folder(s) (", timeout=timeout)  # a sync's summary line

    def new_mail(self, folder="INBOX", timeout=15):
        end = time.time() + timeout
        seen = []
        while time.time() < end:
            try:
                ev = self.signals.get(timeout=max(0.01, end - time.time()))
            except queue.Empty:
                break
            seen.append(ev)
            assert ev["signal"] != "AccountError", ev
            if ev["signal"] == "NewMail" and ev["args"][:2] == ["home", folder]:
                return ev
        raise AssertionError("no NewMail for %s; got %r" % (folder, seen))

    def close(self):
        self.watch.terminate()
        self.watch.wait(timeout=5)
        rc = self.daemon.stop()
        self.bus.close()
        self.proxy.close()
        return rc


def test_push_started_syncs_reuse_the_session(sandbox, tmp_path):
    w = World(sandbox, tmp_path)
    try:
        assert len(w.proxy.pairs) == 2 and len(w.proxy.kept()) == 1, w.proxy.pairs  # push + the first sync
        for i in range(3):
            n_seen = len(w.daemon.seen)
            sandbox.deliver(USER, message(i))
            w.new_mail()
            w.wait_summary()
            assert any("reusing the kept session" in l for l in w.daemon.seen[n_seen:]), w.daemon.seen[n_seen:]
        assert len(w.proxy.pairs) == 2, "a sync connected again: %d connections" % len(w.proxy.pairs)
    finally:
        rc = w.close()
    assert rc == 0


def test_dead_or_closed_kept_session_costs_no_failure(sandbox, tmp_path):
    w = World(sandbox, tmp_path)
    try:
        # Silent (a NAT mapping gone): the NOOP goes unanswered, the sync connects afresh and works.
        kept = w.proxy.kept()
        assert len(kept) == 1
        kept[0]["silent"] = True
        n_seen = len(w.daemon.seen)
        t0 = time.time()
        r = subprocess.run([TEGAMI, "sync", "home", "--wait"], env=w.bus.env, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert time.time() - t0 < 10  # the probe's deadline (5 s) and a fresh login, no backoff
        w.daemon.wait_for("connecting afresh", timeout=1)
        assert len(w.proxy.pairs) == 3
        # Hung up by the server while kept: dropped at once; the next sync logs in afresh.
        kept = [p for p in w.proxy.kept() if not p["silent"]]
        assert len(kept) == 1, w.proxy.pairs
        w.proxy.hang_up(kept[0])
        time.sleep(0.3)
        n_seen = len(w.daemon.seen)
        sandbox.deliver(USER, message(50))
        w.new_mail()
        w.wait_summary()
        assert not any("reusing the kept session" in l for l in w.daemon.seen[n_seen:]), w.daemon.seen[n_seen:]
        assert len(w.proxy.pairs) == 4
    finally:
        rc = w.close()
    assert rc == 0
