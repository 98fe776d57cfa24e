"""POP3 fetch and retention rules against the harness' real Dovecot (issue 5).

Each case empties alice's INBOX, delivers messages over LMTP (or straight into
the Maildir), writes a config file and runs the pop3-fetch-tool test tool
(daemon/pop3/pop3-fetch-tool.c: one fetch of one account into a store) with an
injected clock (--now), then checks the store (`--list`: UIDL, state,
first_seen, size, SHA-256 of the stored body, and the message row count) and
the server (poplib over TLS). Stored bodies are compared with the server's
Maildir files in wire form (CRLF line ends).

Faults go through FaultProxy, a plain-text TCP proxy on loopback (the account
uses `tls = none`, allowed for loopback only) that cuts the connection at a
chosen command or byte, hides capabilities, or refuses a command; and through
kill -9 of the tool at random moments (TEGAMI_POP3_KILL_ROUNDS, default 100;
TEGAMI_POP3_KILL_SEED). After every fault: each delivered message is on the
server or stored here, none is stored twice, and the next fetch finishes the job.

Exit codes: 0 ok, 1 network/protocol, 2 certificate, 3 downgrade,
4 authentication, 5 credentials, 6 store.
"""
import glob
import hashlib
import os
import poplib
import random
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

TOOL = os.environ.get("POP3_FETCH_TOOL", "build/daemon/pop3/pop3-fetch-tool")
TEGAMID = os.environ.get("TEGAMID", "build/daemon/tegamid")
USER = "alice@example.org"
DAY = 86400
T0 = 1800000000


@pytest.fixture
def inbox(sandbox):
    """alice's INBOX, emptied before the test."""
    sandbox.doveadm("expunge", "-u", USER, "mailbox", "INBOX", "all")
    return sandbox


def message(i, size=2000, tag=""):
    body = ("line %d of a test message %s\n" % (i, tag)) * max(1, size // 30)
    return ("From: Tester <tester@example.net>\nTo: <%s>\nSubject: POP3 test %d %s\n"
            "Message-ID: <pop3-%d-%s@example.net>\n\n%s"
            % (USER, i, tag, i, os.urandom(6).hex(), body)).encode()


def deliver(sb, count, size=2000, tag=""):
    for i in range(count):
        sb.deliver(USER, message(i, size, tag))


def write_config(tmp_path, sb, scheme="pop3s", name="home", **rules):
    port = sb.ports["pop3s" if scheme == "pop3s" else "pop3"]
    keys = {"address": USER, "password": sb.users[USER], "ca_file": sb.ca_file,
            "pop3": "%s://%s:%d" % (scheme, sb.host, port)}
    keys.update({k: v for k, v in rules.items() if v is not None})
    path = tmp_path / ("%s.ini" % name)
    path.write_text("[account %s]\n%s" % (name, "".join("%s = %s\n" % kv for kv in keys.items())))
    path.chmod(0o600)
    return str(path)


class Run:
    def __init__(self, proc):
        self.rc, self.out, self.err = proc.returncode, proc.stdout, proc.stderr
        self.counts = {}
        for line in self.out.splitlines():
            if line.startswith("server="):
                self.counts = {k: int(v) for k, v in (w.split("=") for w in line.split())}

    def __getitem__(self, key):
        return self.counts[key]

    def __repr__(self):
        return "rc=%d\nstdout: %s\nstderr: %s" % (self.rc, self.out, self.err[-4000:])


def tool(cfg, store, *args, name="home", timeout=120):
    argv = [TOOL, "--config", cfg, "--account", name, "--store", store] + [str(a) for a in args]
    return Run(subprocess.run(argv, capture_output=True, text=True, timeout=timeout))


def fetch(cfg, store, now, *args, **kw):
    r = tool(cfg, store, "--now", now, *args, **kw)
    assert r.rc == 0, r
    return r


def entries(cfg, store, *args, with_count=False, **kw):
    """{uidl: (state, first_seen, size, sha256)} from the store (and the message row count)."""
    r = tool(cfg, store, "--list", *args, **kw)
    assert r.rc == 0, r
    out, count = {}, None
    for line in r.out.splitlines():
        if line.startswith("messages="):
            count = int(line.split("=")[1])
            continue
        uidl, state, first_seen, size, sha = line.split()
        out[uidl] = (state, int(first_seen), int(size), sha)
    return (out, count) if with_count else out


def server_uidls(sb):
    """UIDL -> SHA-256 of the message as POP3 serves it (CRLF), read over pop3s."""
    ctx = ssl.create_default_context(cafile=sb.ca_file)
    p = poplib.POP3_SSL(sb.host, sb.ports["pop3s"], context=ctx, timeout=30)
    try:
        p.user(USER)
        p.pass_(sb.users[USER])
        out = {}
        for line in p.uidl()[1]:
            num, uidl = line.decode().split()
            lines = p.retr(int(num))[1]
            out[uidl] = hashlib.sha256(b"".join(l + b"\r\n" for l in lines)).hexdigest()
        p.quit()
        return out
    except Exception:
        p.close()
        raise


def maildir_hashes(sb):
    """SHA-256 of every Maildir file of alice's INBOX in wire form (CRLF)."""
    root = sb.maildir_path(USER)
    out = []
    for path in glob.glob(os.path.join(root, "new", "*")) + glob.glob(os.path.join(root, "cur", "*")):
        with open(path, "rb") as f:
            data = f.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        out.append(hashlib.sha256(data).hexdigest())
    return sorted(out)


def stored_hashes(ent):
    return sorted(sha for state, _, _, sha in ent.values() if sha != "-")


# ------------------------------------------------------------------ fetch
@pytest.mark.parametrize("scheme", ["pop3s", "pop3"])
def test_fetch_stores_every_message_once(inbox, tmp_path, scheme):
    deliver(inbox, 6)
    want = maildir_hashes(inbox)
    assert len(want) == 6
    cfg, store = write_config(tmp_path, inbox, scheme), str(tmp_path / "mail.db")
    r = fetch(cfg, store, T0)
    assert (r["server"], r["downloaded"], r["deleted"]) == (6, 6, 0), r
    ent, count = entries(cfg, store, with_count=True)
    assert stored_hashes(ent) == want and count == 6
    assert all(state == "downloaded" and fs == T0 for state, fs, _, _ in ent.values())
    assert set(ent) == set(server_uidls(inbox))  # left on the server (the default)
    # A second fetch downloads nothing new, and stores nothing twice.
    r = fetch(cfg, store, T0 + 60)
    assert (r["server"], r["downloaded"], r["deleted"]) == (6, 0, 0), r
    ent, count = entries(cfg, store, with_count=True)
    assert stored_hashes(ent) == want and count == 6


def test_fetch_into_encrypted_store(inbox, tmp_path):
    deliver(inbox, 3, size=70000)
    want = maildir_hashes(inbox)
    cfg, store = write_config(tmp_path, inbox, "pop3"), str(tmp_path / "mail.db")
    r = fetch(cfg, store, T0, "--encrypted")
    assert r["downloaded"] == 3, r
    assert stored_hashes(entries(cfg, store, "--encrypted")) == want
    assert fetch(cfg, store, T0 + 1, "--encrypted")["downloaded"] == 0
    assert tool(cfg, store, "--list").rc == 6  # no key, no store
    with open(store, "rb") as f:
        assert not f.read(16).startswith(b"SQLite format 3")



def test_large_messages_stream(inbox, tmp_path):
    """Bodies bigger than the store's backlog: RETRs pause until the store drains."""
    msgs = []
    for i in range(6):
        lines = "".join("%s\n" % os.urandom(38).hex() for _ in range(50000))  # ~3.9 MB each
        msgs.append(("From: big@example.net\nSubject: big %d\n\n%s" % (i, lines)).encode())
    inbox.seed_maildir(USER, "INBOX", msgs)
    want = sorted(hashlib.sha256(m.replace(b"\n", b"\r\n")).hexdigest() for m in msgs)
    cfg, store = write_config(tmp_path, inbox), str(tmp_path / "mail.db")
    r = fetch(cfg, store, T0, "--encrypted")
    assert r["downloaded"] == 6, r
    ent, count = entries(cfg, store, "--encrypted", with_count=True)
    assert stored_hashes(ent) == want and count == 6

def test_new_mail_only_is_downloaded(inbox, tmp_path):
    deliver(inbox, 2, tag="first")
    cfg, store = write_config(tmp_path, inbox), str(tmp_path / "mail.db")
    assert fetch(cfg, store, T0)["downloaded"] == 2
    deliver(inbox, 3, tag="second")
    r = fetch(cfg, store, T0 + 100)
    assert (r["server"], r["downloaded"]) == (5, 3), r
    assert stored_hashes(entries(cfg, store)) == maildir_hashes(inbox)


# ------------------------------------------------------------------ rules
def test_leave_on_server_no(inbox, tmp_path):
    deliver(inbox, 4)
    want = maildir_hashes(inbox)
    cfg, store = write_config(tmp_path, inbox, pop3_leave_on_server="no"), str(tmp_path / "mail.db")
    r = fetch(cfg, store, T0)
    assert (r["downloaded"], r["deleted"]) == (4, 4), r
    assert server_uidls(inbox) == {}
    ent = entries(cfg, store)
    assert stored_hashes(ent) == want
    assert {state for state, _, _, _ in ent.values()} == {"deleted"}


def test_delete_after_days(inbox, tmp_path):
    cfg, store = write_config(tmp_path, inbox, pop3_delete_after_days=3), str(tmp_path / "mail.db")
    deliver(inbox, 2, tag="old")
    assert fetch(cfg, store, T0)["downloaded"] == 2  # first seen at T0
    deliver(inbox, 2, tag="young")
    r = fetch(cfg, store, T0 + 2 * DAY)  # first seen at T0 + 2 days; nothing is 3 days old yet
    assert (r["downloaded"], r["deleted"]) == (2, 0), r
    ent = entries(cfg, store)
    old = {u for u, (_, fs, _, _) in ent.items() if fs == T0}
    young = {u for u, (_, fs, _, _) in ent.items() if fs == T0 + 2 * DAY}
    assert len(old) == 2 and len(young) == 2
    # At T0 + 4 days: first seen 4 days ago goes, 2 days ago stays.
    r = fetch(cfg, store, T0 + 4 * DAY)
    assert (r["downloaded"], r["deleted"]) == (0, 2), r
    assert set(server_uidls(inbox)) == young
    ent = entries(cfg, store)
    assert all(ent[u][0] == "deleted" and ent[u][3] != "-" for u in old)  # still stored here
    assert all(ent[u][0] == "downloaded" for u in young)


def test_delete_when_deleted_locally(inbox, tmp_path):
    deliver(inbox, 3)
    cfg, store = write_config(tmp_path, inbox, pop3_delete_when_deleted_locally="yes"), str(tmp_path / "mail.db")
    assert fetch(cfg, store, T0)["downloaded"] == 3
    victim = sorted(entries(cfg, store))[1]
    r = tool(cfg, store, "--expunge-uidl", victim)
    assert r.rc == 0 and "expunged=1" in r.out, r
    r = fetch(cfg, store, T0 + 10)
    assert (r["downloaded"], r["deleted"]) == (0, 1), r
    left = server_uidls(inbox)
    assert victim not in left and len(left) == 2


def test_deleted_locally_kept_without_rule(inbox, tmp_path):
    deliver(inbox, 2)
    cfg, store = write_config(tmp_path, inbox), str(tmp_path / "mail.db")
    fetch(cfg, store, T0)
    victim = sorted(entries(cfg, store))[0]
    assert tool(cfg, store, "--expunge-uidl", victim).rc == 0
    r = fetch(cfg, store, T0 + 10)
    assert (r["downloaded"], r["deleted"]) == (0, 0), r  # neither deleted nor downloaded again
    assert victim in server_uidls(inbox)


def staged(inbox, cfg, store, stages, size=2000):
    """Delivers and fetches in stages, one day apart; returns the UIDLs of each stage."""
    seen, out = set(), []
    for i, n in enumerate(stages):
        deliver(inbox, n, size=size, tag="stage%d" % i)
        fetch(cfg, store, T0 + i * DAY)
        now = set(entries(cfg, store))
        out.append(now - seen)
        seen = now
    return out


def test_keep_server_under_messages(inbox, tmp_path):
    cfg, store = write_config(tmp_path, inbox, pop3_keep_server_under_messages=3), str(tmp_path / "mail.db")
    s0, s1, s2 = staged(inbox, cfg, store, [2, 1, 0])
    assert len(server_uidls(inbox)) == 3  # at the limit: nothing deleted
    deliver(inbox, 2, tag="late")
    r = fetch(cfg, store, T0 + 5 * DAY)
    assert (r["downloaded"], r["deleted"]) == (2, 2), r
    left = set(server_uidls(inbox))
    assert len(left) == 3 and not (left & s0) and s1 <= left  # the two oldest went


def test_keep_server_under_mb(inbox, tmp_path):
    cfg, store = write_config(tmp_path, inbox, pop3_keep_server_under_mb=1), str(tmp_path / "mail.db")
    s0, s1, s2 = staged(inbox, cfg, store, [1, 1, 1], size=400000)
    left = set(server_uidls(inbox))
    # ~1.2 MB after the third stage: the oldest went, the newest two (~0.8 MB) stay.
    assert left == s1 | s2, (left, s0, s1, s2)
    ent = entries(cfg, store)
    assert all(ent[u][0] == "deleted" for u in s0)


def test_bigger_than_rules(inbox, tmp_path):
    inbox.deliver(USER, message(1, size=1500000, tag="huge"))
    inbox.deliver(USER, message(2, size=2000, tag="small"))
    cfg = write_config(tmp_path, inbox, pop3_skip_bigger_than_mb=1)
    store = str(tmp_path / "skip.db")
    r = fetch(cfg, store, T0)
    assert (r["downloaded"], r["skipped"], r["deleted"]) == (1, 1, 0), r
    ent = entries(cfg, store)
    assert sorted(s for s, _, _, _ in ent.values()) == ["downloaded", "skipped"]
    assert len(server_uidls(inbox)) == 2  # the skipped one is never deleted

    cfg = write_config(tmp_path, inbox, name="big", pop3_delete_bigger_than_mb=1)
    store = str(tmp_path / "big.db")
    r = fetch(cfg, store, T0, name="big")
    assert (r["downloaded"], r["deleted"]) == (2, 1), r
    ent = entries(cfg, store, name="big")
    left = server_uidls(inbox)
    assert len(left) == 1 and ent[next(iter(left))][2] < 100000
    assert stored_hashes(ent) and len(stored_hashes(ent)) == 2



def test_server_usage_warning(inbox, tmp_path):
    """STAT's usage is reported; above pop3_server_warn_mb the fetch raises the quota warning."""
    inbox.deliver(USER, message(1, size=1500000, tag="bulky"))
    cfg, store = write_config(tmp_path, inbox, pop3_server_warn_mb=1), str(tmp_path / "mail.db")
    r = fetch(cfg, store, T0)
    assert r["server_bytes"] > 1500000 and r["warnings"] & (1 << 8), r  # POP3_FETCH_W_QUOTA
    cfg = write_config(tmp_path, inbox, name="roomy", pop3_server_warn_mb=2)
    r = fetch(cfg, str(tmp_path / "roomy.db"), T0, name="roomy")
    assert not r["warnings"] & (1 << 8), r

def test_dry_run_changes_nothing(inbox, tmp_path):
    deliver(inbox, 2)
    cfg, store = write_config(tmp_path, inbox, pop3_leave_on_server="no"), str(tmp_path / "mail.db")
    r = fetch(cfg, store, T0, "--dry-run")
    plans = [l for l in r.out.splitlines() if l.startswith("plan ")]
    assert len(plans) == 2 and all("download" in p for p in plans), r
    assert r["downloaded"] == 0 and len(server_uidls(inbox)) == 2
    assert entries(cfg, store) == {}


def test_deleted_by_another_client(inbox, tmp_path):
    deliver(inbox, 3)
    cfg, store = write_config(tmp_path, inbox), str(tmp_path / "mail.db")
    fetch(cfg, store, T0)
    inbox.doveadm("expunge", "-u", USER, "mailbox", "INBOX", "all")
    r = fetch(cfg, store, T0 + 10)
    assert (r["server"], r["deleted_elsewhere"], r["deleted"]) == (0, 3, 0), r
    assert {s for s, _, _, _ in entries(cfg, store).values()} == {"deleted"}


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("scheme", ["pop3s", "pop3"])
def test_wrong_password(inbox, tmp_path, scheme):
    deliver(inbox, 1)
    cfg = write_config(tmp_path, inbox, scheme, password="wrong")
    t0 = time.monotonic()
    r = tool(cfg, str(tmp_path / "mail.db"), "--now", T0, timeout=60)
    assert r.rc == 4, r
    assert "account home" in r.err and "%s:%d" % (inbox.host, inbox.ports[scheme]) in r.err, r
    assert "authentication failed" in r.err, r
    assert time.monotonic() - t0 < 20  # one attempt, no retry loop
    assert len(server_uidls(inbox)) == 1



# ------------------------------------------------------------------ faults
class FaultProxy:
    """A plain-text TCP proxy to Dovecot's pop3 port that cuts the connection
    once: before forwarding client command number `cut_command` (0-based), or
    just after forwarding it and before any reply to it (`cut_after`), or before
    the first command named `cut_on`, or after forwarding `cut_bytes` bytes from
    the server. The client uses `tls = none`
    (loopback only), so the proxy sees the commands."""

    def __init__(self, target_port, cut_command=None, cut_after=False, cut_bytes=None,
                 strip_caps=(), refuse=(), cut_on=None):
        self.target_port, self.cut_command, self.cut_after = target_port, cut_command, cut_after
        self.cut_on = cut_on  # cut before forwarding the first command of this name
        self.cut_bytes = cut_bytes
        # strip_caps: server lines dropped (CAPA entries); refuse: commands the proxy answers
        # with -ERR itself (only in lockstep, so strip PIPELINING with it).
        self.strip_caps, self.refuse = {c.encode() for c in strip_caps}, set(refuse)
        self.commands, self.down_bytes, self.cut = [], 0, False
        self.block_down = False
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.lsock.close()

    def _accept(self):
        try:
            client, _ = self.lsock.accept()
        except OSError:
            return
        server = socket.create_connection(("127.0.0.1", self.target_port))
        self.pair = (client, server)
        threading.Thread(target=self._up, args=(client, server), daemon=True).start()
        threading.Thread(target=self._down, args=(server, client), daemon=True).start()

    def _kill(self):
        with self.lock:
            if self.cut:
                return
            self.cut = True
        for s in self.pair:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _up(self, client, server):
        buf = b""
        while not self.cut:
            try:
                data = client.recv(65536)
            except OSError:
                return
            if not data:
                return self._kill()
            buf += data
            while b"\r\n" in buf:
                line, buf = buf.split(b"\r\n", 1)
                index = len(self.commands)
                self.commands.append(line.split(b" ")[0].decode(errors="replace"))
                if (index == self.cut_command and not self.cut_after) or self.commands[-1] == self.cut_on:
                    return self._kill()
                if index == self.cut_command:
                    self.block_down = True
                if self.commands[-1].upper() in self.refuse:
                    client.sendall(b"-ERR not supported (fault proxy)\r\n")
                    continue
                try:
                    server.sendall(line + b"\r\n")
                except OSError:
                    return
                if index == self.cut_command:
                    time.sleep(0.3)   # the server acts on it; its reply never arrives
                    return self._kill()

    def _down(self, server, client):
        pending = b""
        while not self.cut:
            try:
                data = server.recv(65536)
            except OSError:
                return
            if not data or self.block_down:
                return self._kill()
            if self.strip_caps:
                lines = (pending + data).split(b"\r\n")
                pending = lines.pop()
                data = b"".join(l + b"\r\n" for l in lines if l not in self.strip_caps)
            if self.cut_bytes is not None and self.down_bytes + len(data) >= self.cut_bytes:
                try:
                    client.sendall(data[:self.cut_bytes - self.down_bytes])
                except OSError:
                    pass
                self.down_bytes = self.cut_bytes
                return self._kill()
            self.down_bytes += len(data)
            try:
                client.sendall(data)
            except OSError:
                return


def proxy_config(tmp_path, sb, proxy, **rules):
    cfg = write_config(tmp_path, sb, "pop3", tls="none", **rules)
    with open(cfg) as f:
        text = f.read().replace(":%d" % sb.ports["pop3"], ":%d" % proxy.port)
    with open(cfg, "w") as f:
        f.write(text)
    return cfg


def check_nothing_lost(sb, cfg, store, delivered):
    """Every delivered message is on the server or stored here (or both); none twice here."""
    on_server = server_uidls(sb)
    ent, count = entries(cfg, store, with_count=True)
    stored = [sha for _, _, _, sha in ent.values() if sha != "-"]
    assert len(stored) == len(set(stored)) == count, (ent, count)
    assert set(delivered) <= set(stored) | set(on_server.values()), (delivered, ent, on_server)
    for uidl in on_server:
        if uidl in ent and ent[uidl][0] != "skipped":
            assert ent[uidl][3] == on_server[uidl]


def test_clean_session_through_proxy(inbox, tmp_path):
    deliver(inbox, 2)
    proxy = FaultProxy(inbox.ports["pop3"])
    cfg, store = proxy_config(tmp_path, inbox, proxy), str(tmp_path / "mail.db")
    r = fetch(cfg, store, T0)
    proxy.close()
    assert r["downloaded"] == 2, r
    assert proxy.commands[-1] == "QUIT" and "RETR" in proxy.commands, proxy.commands


def fault_round(sb, tmp_path, n, **cut):
    """One fetch cut as told, then a clean one: nothing lost, nothing twice, server emptied."""
    sb.doveadm("expunge", "-u", USER, "mailbox", "INBOX", "all")
    deliver(sb, 3, size=30000, tag="round%d" % n)
    delivered = sorted(server_uidls(sb).values())
    d = tmp_path / ("r%d" % n)
    d.mkdir()
    store = str(d / "mail.db")
    proxy = FaultProxy(sb.ports["pop3"], **cut)
    cfg = proxy_config(d, sb, proxy, pop3_leave_on_server="no")
    r = tool(cfg, store, "--now", T0)
    proxy.close()
    check_nothing_lost(sb, cfg, store, delivered)
    # The next fetch finishes the job: everything here once, nothing left there.
    clean = write_config(d, sb, "pop3s", name="home", pop3_leave_on_server="no")
    r2 = fetch(clean, store, T0 + 60)
    check_nothing_lost(sb, clean, store, delivered)
    ent, count = entries(clean, store, with_count=True)
    assert server_uidls(sb) == {}, (r, r2)
    assert stored_hashes(ent) == delivered and count == 3, (r, r2, ent)
    return r, proxy


def test_connection_cut_at_every_command(inbox, tmp_path):
    # Learn the session's commands once, then cut before and after each in turn.
    _, proxy = fault_round(inbox, tmp_path, 0)
    commands = proxy.commands
    assert "RETR" in commands and "DELE" in commands and commands[-1] == "QUIT", commands
    first_retr = commands.index("RETR")
    n = 1
    for index in range(first_retr, len(commands)):
        for after in (False, True):
            r, proxy = fault_round(inbox, tmp_path, n, cut_command=index, cut_after=after)
            assert proxy.cut or r.rc == 0, (index, after, r)
            n += 1


def test_connection_cut_inside_replies(inbox, tmp_path):
    _, proxy = fault_round(inbox, tmp_path, 0)
    total = proxy.down_bytes
    assert total > 90000
    for n, at in enumerate(range(200, total, max(1, total // 25)), 1):
        fault_round(inbox, tmp_path, n, cut_bytes=at)


def test_kill_9_during_fetch(inbox, tmp_path):
    rounds = int(os.environ.get("TEGAMI_POP3_KILL_ROUNDS", "100"))
    rng = random.Random(int(os.environ.get("TEGAMI_POP3_KILL_SEED", "5")))
    cfg, store = write_config(tmp_path, inbox, pop3_leave_on_server="no"), str(tmp_path / "mail.db")
    delivered = []
    # How long an uninterrupted fetch of one round takes, to spread the kills over it.
    deliver(inbox, 4, size=20000, tag="warmup")
    delivered += server_uidls(inbox).values()
    t0 = time.monotonic()
    fetch(cfg, store, T0)
    span = max(0.05, time.monotonic() - t0)
    for n in range(rounds):
        before = set(server_uidls(inbox).values())
        deliver(inbox, 4, size=20000, tag="kill%d" % n)
        delivered += set(server_uidls(inbox).values()) - before
        proc = subprocess.Popen([TOOL, "--config", cfg, "--account", "home", "--store", store, "--now",
                                 str(T0 + n)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, span * 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        check_nothing_lost(inbox, cfg, store, delivered)
    fetch(cfg, store, T0 + rounds + 1)
    ent, count = entries(cfg, store, with_count=True)
    assert server_uidls(inbox) == {}
    assert stored_hashes(ent) == sorted(delivered) and count == len(delivered)


def test_lockstep_without_uidl(inbox, tmp_path):
    """A server without PIPELINING and without UIDL: lockstep, and messages named
    by a hash of their headers (TOP n 0) and size, stably from one fetch to the next."""
    deliver(inbox, 3)
    want = maildir_hashes(inbox)
    proxy = FaultProxy(inbox.ports["pop3"], strip_caps=("PIPELINING", "UIDL"), refuse=("UIDL",))
    cfg, store = proxy_config(tmp_path, inbox, proxy, pop3_delete_after_days=3), str(tmp_path / "mail.db")
    r = fetch(cfg, store, T0)
    proxy.close()
    assert (r["downloaded"], r["unmanaged"]) == (3, 0), r
    assert r["warnings"] & (1 << 9), r  # POP3_FETCH_W_UIDL_FALLBACK, for the status
    assert "TOP" in proxy.commands and "UIDL" in proxy.commands, proxy.commands
    ent = entries(cfg, store)
    assert stored_hashes(ent) == want
    assert all(u.startswith("tegami-top-") for u in ent), ent
    # Same names next time: nothing new; at T0 + 4 days the age rule deletes them.
    proxy = FaultProxy(inbox.ports["pop3"], strip_caps=("PIPELINING", "UIDL"), refuse=("UIDL",))
    cfg = proxy_config(tmp_path, inbox, proxy, pop3_delete_after_days=3)
    r = fetch(cfg, store, T0 + 4 * DAY)
    proxy.close()
    assert (r["downloaded"], r["deleted"]) == (0, 3), r
    assert server_uidls(inbox) == {}


def test_delete_pending_rechecked_with_new_rules(inbox, tmp_path):
    """DELE sent but the session cut before QUIT: the messages stay, delete-pending; a later
    fetch under rules that keep them sets them back to downloaded and downloads nothing again."""
    deliver(inbox, 2)
    proxy = FaultProxy(inbox.ports["pop3"], cut_on="QUIT")  # the server never applies the DELEs
    cfg, store = proxy_config(tmp_path, inbox, proxy, pop3_leave_on_server="no"), str(tmp_path / "mail.db")
    r = tool(cfg, store, "--now", T0)
    proxy.close()
    assert r.rc != 0 and proxy.cut and "DELE" in proxy.commands, (r, proxy.commands)
    assert len(server_uidls(inbox)) == 2
    ent = entries(cfg, store)
    assert {s for s, _, _, _ in ent.values()} == {"delete-pending"}, ent
    keep = write_config(tmp_path, inbox, name="home")
    r = fetch(keep, store, T0 + 60)
    assert (r["downloaded"], r["deleted"]) == (0, 0), r
    assert {s for s, _, _, _ in entries(keep, store).values()} == {"downloaded"}
    assert len(server_uidls(inbox)) == 2


def test_stls_required_when_not_offered(inbox, tmp_path):
    """pop3:// requires STLS: a server (here, a proxy hiding it) that does not offer it is refused
    as a downgrade, before any credentials are sent."""
    deliver(inbox, 1)
    proxy = FaultProxy(inbox.ports["pop3"], strip_caps=("STLS",))
    cfg = write_config(tmp_path, inbox, "pop3")
    with open(cfg) as f:
        text = f.read().replace(":%d" % inbox.ports["pop3"], ":%d" % proxy.port)
    with open(cfg, "w") as f:
        f.write(text)
    r = tool(cfg, str(tmp_path / "mail.db"), "--now", T0, timeout=60)
    proxy.close()
    assert r.rc == 3, r
    assert "account home" in r.err and "STLS was not offered" in r.err, r
    assert not any(c in ("USER", "PASS", "AUTH") for c in proxy.commands), proxy.commands


# ------------------------------------------------------------------ tegamid --once
def tegamid_once(cfg, data_dir, *args):
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}  # no bus: stays private
    argv = [TEGAMID, "--config", cfg, "--data-dir", str(data_dir), "--once"] + list(args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)


def test_tegamid_once_fetches_pop3(inbox, tmp_path):
    deliver(inbox, 3)
    want = maildir_hashes(inbox)
    cfg = write_config(tmp_path, inbox)
    with open(cfg) as f:
        text = f.read()
    with open(cfg, "w") as f:
        f.write("[store]\nkey = file\n\n" + text)
    data = tmp_path / "data"
    r = tegamid_once(cfg, data, "--account", "home")
    assert r.returncode == 0, r.stderr
    store = str(data / "mail.db")
    ent, count = entries(cfg, store, "--encrypted", with_count=True)
    assert stored_hashes(ent) == want and count == 3
    r = tegamid_once(cfg, data)
    assert r.returncode == 0, r.stderr
    assert entries(cfg, store, "--encrypted", with_count=True)[1] == 3  # nothing twice


def test_tegamid_once_reports_failure(inbox, tmp_path):
    cfg = write_config(tmp_path, inbox, password="wrong")
    with open(cfg) as f:
        text = f.read()
    with open(cfg, "w") as f:
        f.write("[store]\nkey = file\n\n" + text)
    r = tegamid_once(cfg, tmp_path / "data")
    assert r.returncode != 0
    assert "account home" in r.stderr and "authentication failed" in r.stderr, r.stderr


# ------------------------------------------------------------------ tegamid's scheduler
def server_stat(sb):
    ctx = ssl.create_default_context(cafile=sb.ca_file)
    p = poplib.POP3_SSL(sb.host, sb.ports["pop3s"], context=ctx, timeout=30)
    try:
        p.user(USER)
        p.pass_(sb.users[USER])
        return p.stat()[0]
    finally:
        p.quit()


def wait_until(pred, timeout, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def test_daemon_polls_pop3_account(inbox, tmp_path):
    """tegamid (no --once) fetches at start, then again every poll_interval (10 s +-10%), one session at a time."""
    from tegami_bus import Bus, Daemon
    deliver(inbox, 2)
    cfg = write_config(tmp_path, inbox, pop3_leave_on_server="no", poll_interval=10)
    with open(cfg) as f:
        text = f.read()
    with open(cfg, "w") as f:
        f.write("[store]\nkey = file\n\n" + text)
    data = tmp_path / "data"
    bus = Bus()
    d = Daemon(bus.env, cfg, str(data), "--log-level", "debug")
    try:
        d.wait_for("2 downloaded, 2 deleted on the server", timeout=30)
        assert server_stat(inbox) == 0
        deliver(inbox, 3, tag="later")
        t0 = time.monotonic()
        d.wait_for("3 downloaded, 3 deleted on the server", timeout=30)
        waited = time.monotonic() - t0
        assert waited <= 12.5, waited  # the next poll, not a later one
        assert server_stat(inbox) == 0
    finally:
        rc = d.stop()
        bus.close()
    assert rc == 0, d.seen
    ent, count = entries(cfg, str(data / "mail.db"), "--encrypted", with_count=True)
    # The first two were deleted, then not listed by the second session: their entries were forgotten
    # (the message rows stay); the last three are recorded deleted until a session no longer sees them.
    states = sorted(v[0] for v in ent.values())
    assert count == 5 and states == ["deleted"] * 3 + ["forgotten"] * 2, ent


def test_daemon_stops_polling_after_auth_failure(inbox, tmp_path):
    """A refused password is not retried on every poll: the account waits for the user."""
    from tegami_bus import Bus, Daemon
    cfg = write_config(tmp_path, inbox, password="wrong", poll_interval=10)
    with open(cfg) as f:
        text = f.read()
    with open(cfg, "w") as f:
        f.write("[store]\nkey = file\n\n" + text)
    bus = Bus()
    d = Daemon(bus.env, cfg, str(tmp_path / "data"))
    try:
        d.wait_for("authentication failed", timeout=30)
        d.wait_for("not retrying", timeout=5)
        time.sleep(13)  # more than one poll_interval
        d.lines.put(None)
        rest = []
        while True:
            line = d.lines.get()
            if line is None:
                break
            rest.append(line)
        assert not any("authentication failed" in l for l in rest), rest
    finally:
        rc = d.stop()
        bus.close()
    assert rc == 0
