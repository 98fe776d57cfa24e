"""tegamid and the system bus: logind's suspend and NetworkManager's connectivity.

Each case starts a private system bus (a dbus-daemon of its own, DBUS_SYSTEM_BUS_ADDRESS of tegamid
points at it) with python-dbusmock's `logind` and `networkmanager` templates on it, and a tegamid
syncing one IMAP account of the harness' real Dovecot with push and an hour-long poll, so only push
and the system-bus events move it. The mocks' own API emits PrepareForSleep and changes NM's State
and Metered; what tegamid does is read off the real world: its TCP connections to Dovecot (`ss`),
the NewMail signals of `tegami --json watch`, `tegami status --json` and `tegami show`.
"""
import imaplib
import json
import os
import queue
import re
import ssl
import subprocess
import sys
import threading
import time

import dbus
import pytest

from tegami_bus import TEGAMI, Bus, Daemon, write_config

USER = "alice@example.org"
MOCK = "org.freedesktop.DBus.Mock"
LOGIN1 = ("org.freedesktop.login1", "/org/freedesktop/login1")
NM = ("org.freedesktop.NetworkManager", "/org/freedesktop/NetworkManager")
NM_STATE_DISCONNECTED, NM_STATE_CONNECTED_GLOBAL = 20, 70
NM_METERED_YES, NM_METERED_NO = 1, 2


def message(tag):
    return ("From: Tester <tester@example.net>\nTo: <%s>\nSubject: sleep test %s\n"
            "Message-ID: <sleep-%s-%s@example.net>\n\nthe body of %s\n"
            % (USER, tag, tag, os.urandom(6).hex(), tag)).encode()


def tegami(env, *args):
    return subprocess.run([TEGAMI, *args], capture_output=True, text=True, env=env, timeout=60)


class SystemBus:
    """A private dbus-daemon standing in for the system bus, with the dbusmock services asked for."""

    def __init__(self, templates):
        self.bus = Bus()
        self.address = self.bus.address
        self.mocks = []
        env = dict(self.bus.env, DBUS_SYSTEM_BUS_ADDRESS=self.address)
        for t in templates:
            p = subprocess.Popen([sys.executable if sys.executable.startswith("/usr/") else "/usr/bin/python3",
                                  "-m", "dbusmock", "--system", "--template", t],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            self.mocks.append(p)
        self.conn = dbus.bus.BusConnection(self.address)
        names = {"logind": LOGIN1[0], "networkmanager": NM[0]}
        deadline = time.monotonic() + 15
        for t in templates:
            while not self.conn.name_has_owner(names[t]):
                assert time.monotonic() < deadline, "dbusmock %s did not start" % t
                time.sleep(0.05)
        if "networkmanager" in templates:  # the template has no Metered: as NetworkManager 1.x has it
            self.mock(NM).AddProperty(NM[0], "Metered", dbus.UInt32(NM_METERED_NO))

    def mock(self, who):
        return dbus.Interface(self.conn.get_object(*who), MOCK)

    def sleep(self, on):
        self.mock(LOGIN1).EmitSignal("org.freedesktop.login1.Manager", "PrepareForSleep", "b", [on])

    def inhibitors(self):
        obj = self.conn.get_object(*LOGIN1)
        return [tuple(str(x) for x in i[:4]) for i in obj.ListInhibitors(dbus_interface=LOGIN1[0] + ".Manager")]

    def nm_state(self, state):
        self.mock(NM).SetGlobalConnectionState(dbus.UInt32(state))

    def nm_metered(self, value):
        self.mock(NM).SetProperty(NM[1], NM[0], "Metered", dbus.UInt32(value, variant_level=1))

    def close(self):
        for p in self.mocks:
            p.terminate()
            p.wait(timeout=5)
        self.bus.close()


class Tegamid:
    """tegamid on a private session bus, its system bus at system_address; NewMail through watch."""

    def __init__(self, sb, tmp_path, system_address, log_level="debug", extra=""):
        cfg = write_config(str(tmp_path / "daemon.ini"), (
            "[store]\nkey = file\n\n[account home]\naddress = %s\npassword = %s\nimap = imaps://%s:%d\n"
            "ca_file = %s\npoll_interval = 3600\n%s" % (USER, sb.users[USER], sb.host, sb.ports["imaps"],
                                                        sb.ca_file, extra)))
        self.port = sb.ports["imaps"]
        self.session = Bus()
        self.env = dict(self.session.env, DBUS_SYSTEM_BUS_ADDRESS=system_address)
        self.d = Daemon(self.env, cfg, str(tmp_path / "data"), "--log-level", log_level)
        self.watch = None
        self.events = queue.Queue()
        self.rc = None

    def start_watch(self):
        self.watch = subprocess.Popen([TEGAMI, "--json", "watch"], env=self.env, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True)
        threading.Thread(target=lambda: [self.events.put(json.loads(l)) for l in self.watch.stdout],
                         daemon=True).start()
        time.sleep(0.5)  # subscribed before anything is delivered

    def new_mail(self, timeout):
        """The first NewMail for home/INBOX within timeout (its store ids), or None."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                return None
            if ev["signal"] == "NewMail" and ev["args"][:2] == ["home", "INBOX"]:
                return ev["args"][2]

    def connections(self):
        """tegamid's established TCP connections to Dovecot's IMAPS port."""
        out = subprocess.run(["ss", "-tnpH", "state", "established", "dport", "=", ":%d" % self.port],
                             capture_output=True, text=True, check=True).stdout
        return [l for l in out.splitlines() if "pid=%d," % self.d.proc.pid in l]

    def wait_connections(self, want_some, timeout=5.0):
        deadline = time.monotonic() + timeout
        while bool(self.connections()) != want_some:
            assert time.monotonic() < deadline, (want_some, self.connections(), self.d.seen[-20:])
            time.sleep(0.05)

    def state(self):
        r = tegami(self.env, "status", "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["accounts"][0]["state"]

    def close(self):
        """Stops tegamid (once; again returns its exit code) and its session bus."""
        if self.rc is None:
            if self.watch:
                self.watch.terminate()
                self.watch.wait(timeout=5)
            self.rc = self.d.stop()
            self.session.close()
            while (line := self.d.lines.get(timeout=5)) is not None:  # the rest of its log, for checks
                self.d.seen.append(line)
        return self.rc


@pytest.fixture
def world(sandbox, tmp_path):
    sysbus = SystemBus(["logind", "networkmanager"])
    t = Tegamid(sandbox, tmp_path, sysbus.address)
    try:
        t.d.wait_for("push: watching the server", timeout=30)
        t.d.wait_for("imap: ", timeout=30)  # the first sync is done
        t.start_watch()
        # The first sync's NewMail (what earlier cases left in INBOX) may trail its log line.
        while t.new_mail(1.0) is not None:
            pass
        yield sandbox, sysbus, t
    finally:
        rc = t.close()
        sysbus.close()
    assert rc == 0
    assert not [l for l in t.d.seen if "Sanitizer" in l or "runtime error:" in l], t.d.seen


def test_sleep_closes_connections_and_resume_catches_up(world):
    sb, sysbus, t = world
    # While awake: push is connected, and tegamid holds logind's delay lock.
    t.wait_connections(True)
    assert ("sleep", "tegamid", "closing mail connections", "delay") in sysbus.inhibitors()

    sysbus.sleep(True)
    t.wait_connections(False, timeout=3.0)
    # The lock went once the connections were closed: the system may sleep.
    deadline = time.monotonic() + 3
    while any(i[1] == "tegamid" for i in sysbus.inhibitors()):
        assert time.monotonic() < deadline, sysbus.inhibitors()
        time.sleep(0.05)
    assert t.state() == "paused"

    # Delivered "during sleep": nobody fetches it, nothing connects.
    sb.deliver(USER, message("asleep"))
    assert t.new_mail(2.5) is None
    assert t.connections() == []

    t0 = time.monotonic()
    sysbus.sleep(False)
    ids = t.new_mail(10)
    assert ids, t.d.seen[-20:]
    print("resume -> NewMail: %.0f ms" % ((time.monotonic() - t0) * 1000))
    t.wait_connections(True)  # push is back
    assert t.state() in ("idle", "syncing")
    deadline = time.monotonic() + 5
    while not any(i[1] == "tegamid" for i in sysbus.inhibitors()):  # a new lock for the next sleep
        assert time.monotonic() < deadline, sysbus.inhibitors()
        time.sleep(0.05)
    # And push works again after the resume.
    sb.deliver(USER, message("awake"))
    assert t.new_mail(10)


def test_network_down_pauses_and_return_catches_up(world):
    sb, sysbus, t = world
    t.wait_connections(True)
    sysbus.nm_state(NM_STATE_DISCONNECTED)
    t.wait_connections(False, timeout=3.0)
    assert t.state() == "paused"
    t.d.wait_for("disconnected: syncs paused", timeout=5)

    sb.deliver(USER, message("offline"))
    # No attempt while offline, whatever asks: a "sync now" is held too.
    assert tegami(t.env, "sync", "home").returncode == 0
    for _ in range(25):
        assert t.connections() == []
        time.sleep(0.1)
    assert t.new_mail(0.5) is None

    t0 = time.monotonic()
    sysbus.nm_state(NM_STATE_CONNECTED_GLOBAL)
    assert t.new_mail(10), t.d.seen[-20:]
    print("connectivity back -> NewMail: %.0f ms" % ((time.monotonic() - t0) * 1000))
    t.wait_connections(True)
    assert t.state() in ("idle", "syncing")


def show(t, msg_id):
    return tegami(t.env, "show", str(msg_id))


def show_raw(t, msg_id):
    return subprocess.run([TEGAMI, "show", "--raw", str(msg_id)], capture_output=True, env=t.env, timeout=60)


def drain_log(t, quiet=0.3):
    """Moves the log lines tegamid wrote so far into t.d.seen (wait_for then sees only later ones)."""
    while True:
        try:
            line = t.d.lines.get(timeout=quiet)
        except queue.Empty:
            return
        if line is None:
            return
        t.d.seen.append(line)


class Mailbox:
    """alice's INBOX on the harness' Dovecot through imaplib: the server's own copy to compare with."""

    def __init__(self, sb):
        self.m = imaplib.IMAP4_SSL(sb.host, sb.ports["imaps"],
                                   ssl_context=ssl.create_default_context(cafile=sb.ca_file))
        self.m.login(USER, sb.users[USER])
        self.m.select("INBOX")

    def uid_of(self, msg):
        mid = re.search(rb"Message-ID: (<[^>]+>)", msg).group(1).decode()
        typ, data = self.m.uid("SEARCH", "HEADER", "Message-ID", mid)
        assert typ == "OK" and len(data[0].split()) == 1, data
        return int(data[0])

    def raw(self, uid):
        typ, data = self.m.uid("FETCH", str(uid), "(BODY.PEEK[])")
        assert typ == "OK" and isinstance(data[0], tuple), data
        return data[0][1]

    def expunge(self, uid):
        assert self.m.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)")[0] == "OK"
        assert self.m.uid("EXPUNGE", str(uid))[0] == "OK"

    def close(self):
        self.m.logout()


def big_message(tag, lines):
    """A message of about 77 * lines bytes (several FETCH pieces of 1 MiB for lines > 14000)."""
    body = b"".join(b"%06d %s\r\n" % (i, os.urandom(34).hex().encode()) for i in range(lines))
    return (b"From: Tester <tester@example.net>\r\nTo: <%s>\r\nSubject: sleep test %s\r\n"
            b"Message-ID: <sleep-%s-%s@example.net>\r\n\r\n" % (USER.encode(), tag.encode(), tag.encode(),
                                                                  os.urandom(6).hex().encode())) + body


def test_metered_show_fetches_the_body_on_demand(world):
    sb, sysbus, t = world
    sysbus.nm_metered(NM_METERED_YES)
    t.d.wait_for("metered: headers only", timeout=5)
    big, small = big_message("ondemand", 30000), message("ondemand-offline")  # 2.3 MB: three pieces
    sb.deliver(USER, big)
    (big_id,) = t.new_mail(10)
    sb.deliver(USER, small)
    (small_id,) = t.new_mail(10)
    box = Mailbox(sb)
    try:
        server_copy = box.raw(box.uid_of(big))
    finally:
        box.close()
    # What notifiers ask for never fetches a body (the offline show below proves it was not).
    mail = dbus.bus.BusConnection(t.session.address).get_object("org.tegami.Mail1", "/org/tegami/Mail1")
    summary = mail.GetMessageSummary(dbus.UInt64(small_id), dbus_interface="org.tegami.Mail1")
    assert summary["subject"] == "sleep test ondemand-offline", summary

    # Still metered: show fetches that one body now, byte for byte the server's copy; two callers
    # at once share one fetch (one session).
    drain_log(t)
    t0 = time.monotonic()
    shows = [subprocess.Popen([TEGAMI, "show", "--raw", str(big_id)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=t.env) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in shows]
    print("on-demand fetch of %d bytes, two callers: %.0f ms" % (len(server_copy),
                                                                   (time.monotonic() - t0) * 1000))
    for p, (out, err) in zip(shows, outs):
        assert p.returncode == 0, (err, t.d.seen[-20:])
        assert len(out) == len(server_copy) and out == server_copy
        assert out.endswith(big.split(b"\r\n\r\n", 1)[1])
    t.d.wait_for("fetched the body of message %d on demand" % big_id, timeout=5)
    assert t.new_mail(1.0) is None  # not new mail
    drain_log(t)
    assert len([l for l in t.d.seen if "fetching the body of message %d " % big_id in l]) == 1, t.d.seen[-30:]

    # Offline (no connection can be made): the fetched body comes from the store; the one still
    # without its body is refused with the reason, at once.
    sysbus.nm_state(NM_STATE_DISCONNECTED)
    t.wait_connections(False, timeout=3.0)
    r = show_raw(t, big_id)
    assert r.returncode == 0 and r.stdout == server_copy, r.stderr
    r = show(t, small_id)
    assert r.returncode != 0 and "paused" in r.stderr and "account home" in r.stderr \
        and sb.host in r.stderr, r.stderr
    assert t.connections() == []

    # Online again, still metered: the small one comes on demand too, flags untouched (unread).
    sysbus.nm_state(NM_STATE_CONNECTED_GLOBAL)
    t.wait_connections(True)
    r = show(t, small_id)
    assert r.returncode == 0 and "the body of ondemand-offline" in r.stdout, r.stderr
    r = tegami(t.env, "--json", "list", "home", "INBOX")
    listed = {m["id"]: m for m in json.loads(r.stdout)["messages"]}
    assert "\\Seen" not in listed[small_id].get("flags", []), listed[small_id]


def test_stopping_during_an_on_demand_fetch(world):
    """SIGTERM while a body is being fetched for a caller: tegamid exits cleanly (the fixture checks
    the exit code and the sanitizers), the caller gets an answer, not a hang."""
    sb, sysbus, t = world
    sysbus.nm_metered(NM_METERED_YES)
    t.d.wait_for("metered: headers only", timeout=5)
    sb.deliver(USER, big_message("stopping", 100000))  # 7.7 MB
    (msg_id,) = t.new_mail(20)
    drain_log(t)
    p = subprocess.Popen([TEGAMI, "show", "--raw", str(msg_id)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=t.env)
    t.d.wait_for("fetching the body of message %d" % msg_id, timeout=10)
    assert t.close() == 0
    err = p.communicate(timeout=30)[1].decode()
    print("show during shutdown: rc %d, %s" % (p.returncode, err.strip() or "(the fetch won)"))
    assert p.returncode == 0 or "stopping" in err or "tegamid" in err, err


def test_show_of_a_message_gone_from_the_server(world, tmp_path):
    sb, sysbus, t = world
    sysbus.nm_metered(NM_METERED_YES)
    t.d.wait_for("metered: headers only", timeout=5)
    msg = message("gone")
    sb.deliver(USER, msg)
    (msg_id,) = t.new_mail(10)
    assert t.close() == 0
    box = Mailbox(sb)
    try:
        uid = box.uid_of(msg)
        box.expunge(uid)
    finally:
        box.close()
    # A tegamid on the same store that no longer syncs INBOX (its local copy stays): only the
    # on-demand fetch meets the server's INBOX, and finds the message gone.
    t2 = Tegamid(sb, tmp_path, sysbus.address, extra="folders = !INBOX\n")
    try:
        t2.d.wait_for("new message(s) (", timeout=30)
        r = show(t2, msg_id)
        assert r.returncode != 0, r.stdout
        assert ("account home: %s:%d: message %d is no longer on the server (UID %d in INBOX)"
                % (sb.host, sb.ports["imaps"], msg_id, uid)) in r.stderr, r.stderr
    finally:
        assert t2.close() == 0
    assert not [l for l in t2.d.seen if "Sanitizer" in l or "runtime error:" in l], t2.d.seen


def test_metered_fetches_headers_then_bodies(world):
    sb, sysbus, t = world
    sysbus.nm_metered(NM_METERED_YES)
    t.d.wait_for("metered: headers only", timeout=5)

    sb.deliver(USER, message("metered"))
    ids = t.new_mail(10)
    assert ids and len(ids) == 1, t.d.seen[-20:]
    # Its headers are here: it is listed with its subject. (`show` now would fetch its body on
    # demand: test_metered_show_fetches_the_body_on_demand; here the unmetered run must bring it.)
    r = tegami(t.env, "--json", "list", "home", "INBOX")
    assert r.returncode == 0 and "sleep test metered" in r.stdout, r

    drain_log(t)  # the metered run's summary is behind us
    sysbus.nm_metered(NM_METERED_NO)
    t.d.wait_for("new message(s) (", timeout=10)  # the catch-up run is over
    r = show(t, ids[0])
    assert r.returncode == 0 and "the body of metered" in r.stdout, (r.stdout, r.stderr)
    # Fetching a body that was left behind is not new mail.
    assert t.new_mail(1.0) is None
    drain_log(t)
    assert not [l for l in t.d.seen if "on demand" in l], t.d.seen[-20:]


def test_bodies_left_by_a_metered_run_come_after_a_restart(world, tmp_path):
    sb, sysbus, t = world
    sysbus.nm_metered(NM_METERED_YES)
    t.d.wait_for("metered: headers only", timeout=5)
    sb.deliver(USER, message("restart"))
    ids = t.new_mail(10)
    assert ids
    assert t.close() == 0
    sysbus.nm_metered(NM_METERED_NO)
    # A new tegamid on the same store, unmetered: its first run fetches the body left behind
    # (not `show`, on demand: no "on demand" line).
    t2 = Tegamid(sb, tmp_path, sysbus.address)
    try:
        t2.d.wait_for("new message(s) (", timeout=30)
        r = show(t2, ids[0])
        assert r.returncode == 0 and "the body of restart" in r.stdout, (r.stdout, r.stderr)
    finally:
        assert t2.close() == 0
    assert not [l for l in t2.d.seen if "on demand" in l], t2.d.seen[-20:]


def test_over_max_message_size_comes_on_demand(sandbox, tmp_path):
    """Unmetered, a message over max_message_size is stored from its headers only; show fetches it."""
    sysbus = SystemBus(["networkmanager"])
    t = Tegamid(sandbox, tmp_path, sysbus.address, extra="max_message_size = 1\n")
    try:
        t.d.wait_for("push: watching the server", timeout=30)
        t.d.wait_for("new message(s) (", timeout=30)
        t.start_watch()
        while t.new_mail(1.0) is not None:
            pass
        big = big_message("toobig", 20000)  # 1.5 MB, over 1 MB
        sandbox.deliver(USER, big)
        (msg_id,) = t.new_mail(10)
        box = Mailbox(sandbox)
        try:
            server_copy = box.raw(box.uid_of(big))
        finally:
            box.close()
        r = show_raw(t, msg_id)
        assert r.returncode == 0 and r.stdout == server_copy, (r.stderr, t.d.seen[-20:])
        t.d.wait_for("fetched the body of message %d on demand" % msg_id, timeout=5)
    finally:
        rc = t.close()
        sysbus.close()
    assert rc == 0
    assert not [l for l in t.d.seen if "Sanitizer" in l or "runtime error:" in l], t.d.seen


def test_bus_without_services_and_no_bus_at_all(sandbox, tmp_path):
    """A system bus with neither logind nor NetworkManager, then no system bus: tegamid syncs on
    its timers and push, and says so once, quietly (no warning or error about it)."""
    sysbus = SystemBus([])
    for address in (sysbus.address, "unix:path=%s/no-such-socket" % tmp_path):
        t = Tegamid(sandbox, tmp_path, address, log_level="info")
        try:
            t.d.wait_for("push: watching the server", timeout=30)
            t.d.wait_for("imap: ", timeout=30)
            t.start_watch()
            sandbox.deliver(USER, message("nobus"))
            assert t.new_mail(10)
        finally:
            rc = t.close()
        assert rc == 0
        loud = [l for l in t.d.seen if ("warning" in l.lower() or "error" in l.lower())
                and ("bus" in l or "logind" in l or "NetworkManager" in l)]
        assert loud == [], t.d.seen
        if address != sysbus.address:
            assert any("no system bus" in l for l in t.d.seen), t.d.seen
    sysbus.close()
