"""The mail view and the outbox over D-Bus and the `tegami` CLI (issue 7), against
a store filled by a real POP3 fetch from the harness' Dovecot.

The module seeds alice's INBOX (three small messages and one of 50 MB), runs
`tegamid --once` to fetch them into an encrypted store, then starts tegamid on
a private session bus over that store and checks ListFolders / `folders`,
ListMessages / `list`, GetMessage / `show` (raw bytes equal to what the server
served, and the 50 MB message through the fd with tegamid's peak RSS bounded),
SetFlags / `flag`, Move, Delete, the outbox (`send`, `outbox`, retry, cancel)
and the typed errors. An account `out` sends through a closed port, so what it
queues stays in the outbox.
"""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

import dbus
import pytest

from tegami_bus import TEGAMI, TEGAMID, Bus, Daemon, write_config

USER = "alice@example.org"
NAME = "org.tegami.Mail1"
ROOT = "/org/tegami/Mail1"
IFACE = "org.tegami.Mail1"
ERR = "org.tegami.Mail1.Error."
BIG = 50 * 1024 * 1024
RSS_LIMIT_KIB = 32 * 1024


def small(i):
    return ("From: Sender %d <sender%d@example.net>\nTo: <%s>, \"Bob, B.\" <bob@example.org>\n"
            "Cc: carol@example.org\nSubject: store test %d\nDate: Tue, 1 Jul 2025 10:5%d:00 +0200\n"
            "Message-ID: <store-%d-%s@example.net>\n\nbody line of message %d\nsecond line\n"
            % (i, i, USER, i, i, i, os.urandom(4).hex(), i)).encode()


MIME = ("From: =?ISO-8859-1?Q?Andr=E9?= <andre@example.net>\nTo: <%s>\n"
        "Subject: =?UTF-8?B?44GK5omL57SZ?=\nMIME-Version: 1.0\n"
        "Content-Type: multipart/alternative; boundary=\"b1\"\n\n"
        "--b1\nContent-Type: text/plain; charset=ISO-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n"
        "Caf=E9 cr=E8me\n--b1\nContent-Type: text/html; charset=UTF-8\n\n<p>html</p>\n--b1--\n" % USER).encode()


def big():
    line = b"0123456789abcdef" * 4 + b"\n"  # 65 bytes, 66 on the wire
    head = b"From: big@example.net\nTo: <%s>\nSubject: the big one\n\n" % USER.encode()
    return head + line * ((BIG - len(head)) // 66 + 1)


def wire(msg):
    return msg.replace(b"\n", b"\r\n")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tegami(env, *args, stdin=None):
    return subprocess.run([TEGAMI, *args], capture_output=True, env=env, input=stdin, timeout=120)


def tegami_json(env, *args):
    r = tegami(env, *args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def vm_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no " + field)


def asan_build():
    out = subprocess.run(["ldd", TEGAMID], capture_output=True, text=True).stdout
    return "libasan" in out


@pytest.fixture(scope="module")
def world(sandbox):
    sandbox.doveadm("expunge", "-u", USER, "mailbox", "INBOX", "all")
    smalls = [small(i) for i in range(3)]
    sandbox.seed_maildir(USER, "INBOX", smalls + [MIME])
    sandbox.seed_maildir(USER, "INBOX", [big()])
    work = tempfile.mkdtemp(prefix="tgcs")
    closed = free_port()
    cfg = write_config(os.path.join(work, "config.ini"), (
        "[store]\nkey = file\n\n"
        "[account home]\naddress = %s\npassword = %s\npop3 = pop3s://%s:%d\nca_file = %s\n\n"
        "[account out]\naddress = carol@example.org\nimap = imaps://127.0.0.1:%d\nsmtps = \n"
        % (USER, sandbox.users[USER], sandbox.host, sandbox.ports["pop3s"], sandbox.ca_file, closed)
    ).replace("smtps = \n", "smtp = smtps://127.0.0.1:%d\n" % closed))
    data = os.path.join(work, "data")
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    r = subprocess.run([TEGAMID, "--config", cfg, "--data-dir", data, "--once", "--account", "home"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    bus = Bus()
    d = Daemon(bus.env, cfg, data)
    try:
        d.wait_for("running")
        ns = type("World", (), {})()
        ns.env, ns.daemon, ns.conn, ns.smalls, ns.work, ns.cfg = bus.env, d, bus.connect(), smalls, work, cfg
        yield ns
        ns.conn.close()
        assert d.stop() == 0
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
        bus.close()
        shutil.rmtree(work, ignore_errors=True)


def call(w, method, sig, *args):
    return w.conn.call_blocking(NAME, ROOT, IFACE, method, sig, args, timeout=120)


def dbus_error(w, method, sig, *args):
    with pytest.raises(dbus.exceptions.DBusException) as e:
        call(w, method, sig, *args)
    return e.value.get_dbus_name(), e.value.get_dbus_message()


def listing(w, limit=1000):
    return tegami_json(w.env, "list", "home", "INBOX", "--limit", str(limit))


def by_subject(w):
    return {m["subject"]: m for m in listing(w)["messages"]}


# ---- folders ----

def test_folders(world):
    folders = tegami_json(world.env, "folders", "home")
    assert folders == [{"name": "INBOX", "role": "inbox", "unread": 5, "total": 5}]
    r = tegami(world.env, "folders", "home")
    assert r.returncode == 0 and b"INBOX" in r.stdout and b"inbox" in r.stdout
    assert tegami_json(world.env, "folders", "out") == []  # nothing synced for it
    r = tegami(world.env, "folders", "nope")
    assert r.returncode == 1 and b"NotFound" in r.stderr and b"nope" in r.stderr
    assert tegami(world.env, "folders").returncode == 2


# ---- list ----

def test_list_newest_first_with_envelopes(world):
    page = listing(world)
    assert page["total"] == 5 and page["offset"] == 0
    subjects = [m["subject"] for m in page["messages"]]
    assert subjects == ["the big one", "\u304a\u624b\u7d19", "store test 2", "store test 1", "store test 0"]
    assert "Andr\u00e9" in page["messages"][1]["from"]  # RFC 2047 decoded
    m = page["messages"][2]
    assert "sender2@example.net" in m["from"]
    assert m["date"] == 1751359920  # Tue, 1 Jul 2025 10:52:00 +0200
    assert m["flags"] == [] and m["size"] == len(wire(world.smalls[2]))
    assert page["messages"][0]["size"] == len(wire(big()))

    two = tegami_json(world.env, "list", "home", "INBOX", "--limit", "2")
    assert two["total"] == 5 and [m["id"] for m in two["messages"]] == [m["id"] for m in page["messages"][:2]]
    rest = tegami_json(world.env, "list", "home", "INBOX", "--limit", "2", "--offset", "4")
    assert [m["id"] for m in rest["messages"]] == [page["messages"][4]["id"]]

    r = tegami(world.env, "list", "home", "INBOX")
    assert r.returncode == 0 and b"store test 1" in r.stdout and b"Sender 1" in r.stdout


def test_list_errors(world):
    r = tegami(world.env, "list", "home", "Nowhere")
    assert r.returncode == 1 and b"NotFound" in r.stderr and b"Nowhere" in r.stderr
    r = tegami(world.env, "list", "nope", "INBOX")
    assert r.returncode == 1 and b"nope" in r.stderr
    assert tegami(world.env, "list", "home", "INBOX", "--limit", "0").returncode == 2
    assert tegami(world.env, "list", "home").returncode == 2
    name, _ = dbus_error(world, "ListMessages", "sstu", "home", "INBOX", 0, 0)
    assert name == ERR + "InvalidArgs"
    msgs, total = call(world, "ListMessages", "sstu", "home", "INBOX", 2 ** 63, 10)
    assert list(msgs) == [] and total == 5


# ---- show ----

def test_show_raw_equals_what_the_server_served(world):
    ids = {m["subject"]: m["id"] for m in listing(world)["messages"]}
    for i, msg in enumerate(world.smalls):
        r = tegami(world.env, "show", str(ids["store test %d" % i]), "--raw")
        assert r.returncode == 0, r.stderr
        assert r.stdout == wire(msg)


def test_show_text_and_json(world):
    mid = by_subject(world)["store test 1"]["id"]
    r = tegami(world.env, "show", str(mid))
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "Subject: store test 1" in out
    lines = out.splitlines()
    assert any(l.startswith("From: ") and "sender1@example.net" in l for l in lines), out
    assert any(l.startswith("To: ") and "alice@example.org" in l and "bob@example.org" in l for l in lines), out
    assert out.endswith("\nbody line of message 1\nsecond line\n") and "\r" not in out
    s = tegami_json(world.env, "show", str(mid))
    assert s["account"] == "home" and s["folder"] == "INBOX" and s["subject"] == "store test 1"
    # One address per entry (the comma inside the quoted name does not split).
    assert len(s["to"]) == 2 and "alice@example.org" in s["to"][0] and "bob@example.org" in s["to"][1], s["to"]
    assert len(s["cc"]) == 1 and "carol@example.org" in s["cc"][0]
    assert s["message_id"].lstrip("<").startswith("store-1-")


def test_show_decodes_the_text_part(world):
    mid = by_subject(world)["\u304a\u624b\u7d19"]["id"]
    r = tegami(world.env, "show", str(mid))
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "Subject: \u304a\u624b\u7d19" in out and "Andr\u00e9" in out
    assert out.rstrip("\n").endswith("\n\nCaf\u00e9 cr\u00e8me") and "html" not in out, out
    r = tegami(world.env, "show", str(mid), "--raw")
    assert r.stdout == wire(MIME)


def test_show_errors(world):
    r = tegami(world.env, "show", "999999")
    assert r.returncode == 1 and b"NotFound" in r.stderr and b"999999" in r.stderr
    assert tegami(world.env, "show", "abc").returncode == 2
    assert tegami(world.env, "show", "0").returncode == 2
    for bad in (0, 2 ** 63, 2 ** 64 - 1):
        assert dbus_error(world, "GetMessage", "t", bad)[0] == ERR + "NotFound"


def test_get_message_50mb_through_the_fd(world):
    mid = by_subject(world)["the big one"]["id"]
    t0 = time.monotonic()
    fd, summary = call(world, "GetMessage", "t", mid)
    print("GetMessage of 50 MB answered in %.2f s" % (time.monotonic() - t0))
    h, n = hashlib.sha256(), 0
    with os.fdopen(fd.take(), "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
    want = wire(big())
    assert n == len(want) and h.hexdigest() == hashlib.sha256(want).hexdigest()
    assert summary["subject"] == "the big one" and summary["size"] == len(want)
    hwm = vm_kib(world.daemon.proc.pid, "VmHWM")
    print("tegamid VmHWM after a 50 MB GetMessage: %d KiB" % hwm)
    if not asan_build():
        assert hwm <= RSS_LIMIT_KIB, "tegamid peak RSS %d KiB" % hwm
    # And it still answers.
    assert tegami(world.env, "status").returncode == 0


# ---- flags, move, delete ----

def test_flag_shows_at_once(world):
    m = by_subject(world)["store test 0"]
    r = tegami(world.env, "flag", str(m["id"]), "+seen", "+flagged", "+$Label")
    assert r.returncode == 0, r.stderr
    m2 = by_subject(world)["store test 0"]
    assert m2["flags"] == ["\\Seen", "\\Flagged", "$Label"]
    assert tegami_json(world.env, "folders", "home")[0]["unread"] == 4
    r = tegami(world.env, "flag", str(m["id"]), "-flagged", "-$Label")
    assert r.returncode == 0, r.stderr
    assert by_subject(world)["store test 0"]["flags"] == ["\\Seen"]
    r = tegami(world.env, "list", "home", "INBOX")
    row = [l for l in r.stdout.decode().splitlines() if "store test 0" in l][0]
    assert " N " not in row
    # Through D-Bus, with a keyword and a system flag by their IMAP names.
    call(world, "SetFlags", "atasas", [m["id"]], ["\\Answered"], ["\\Seen"])
    assert by_subject(world)["store test 0"]["flags"] == ["\\Answered"]


def test_flag_errors_change_nothing(world):
    m = by_subject(world)["store test 1"]
    before = m["flags"]
    name, msg = dbus_error(world, "SetFlags", "atasas", [m["id"], 999999], ["\\Flagged"], [])
    assert name == ERR + "NotFound" and "999999" in msg
    assert by_subject(world)["store test 1"]["flags"] == before  # all or none
    assert dbus_error(world, "SetFlags", "atasas", [m["id"]], ["\\Bogus"], [])[0] == ERR + "InvalidArgs"
    assert dbus_error(world, "SetFlags", "atasas", [m["id"]], [], [])[0] == ERR + "InvalidArgs"
    assert dbus_error(world, "SetFlags", "atasas", [2 ** 64 - 1], ["\\Seen"], [])[0] == ERR + "NotFound"
    r = tegami(world.env, "flag", "999999", "+seen")
    assert r.returncode == 1 and b"999999" in r.stderr
    assert tegami(world.env, "flag", str(m["id"])).returncode == 2
    assert tegami(world.env, "flag", "+seen").returncode == 2


def test_move_and_delete(world):
    msgs = by_subject(world)
    victim = msgs["store test 2"]["id"]
    name, msg = dbus_error(world, "Move", "atss", [victim], "home", "Archive")
    assert name == ERR + "NotFound" and "Archive" in msg
    name, msg = dbus_error(world, "Move", "atss", [victim], "out", "INBOX")
    assert name == ERR + "NotFound"
    assert dbus_error(world, "Move", "atss", [victim], "nope", "INBOX")[0] == ERR + "NotFound"
    r = tegami(world.env, "move", "home", "INBOX", str(victim))  # already there: nothing to do
    assert r.returncode == 0, r.stderr
    r = tegami(world.env, "delete", str(victim), str(victim))  # named twice: deleted once
    assert r.returncode == 0, r.stderr
    assert "store test 2" not in by_subject(world)
    assert tegami_json(world.env, "folders", "home")[0]["total"] == 4
    r = tegami(world.env, "show", str(victim))
    assert r.returncode == 1 and b"NotFound" in r.stderr
    assert dbus_error(world, "Delete", "at", [victim])[0] == ERR + "NotFound"
    assert tegami(world.env, "delete", "x").returncode == 2


# ---- the outbox ----

def test_outbox_list_retry_cancel(world):
    ids = []
    for i in range(2):
        msg = ("From: carol@example.org\nTo: dave@example.net\nSubject: queued %d\n\nhello %d\n" % (i, i)).encode()
        out = json.loads(tegami(world.env, "send", "--account", "out", "--json", stdin=msg).stdout)
        ids.append(out["outbox_id"])
    box = {e["id"]: e for e in tegami_json(world.env, "outbox")}
    for i, oid in enumerate(ids):
        e = box[oid]
        assert e["account"] == "out" and e["subject"] == "queued %d" % i
        assert e["recipients"] == ["dave@example.net"]
        assert e["state"] in ("queued", "retrying", "sending")
    r = tegami(world.env, "outbox")
    assert r.returncode == 0 and b"queued 0" in r.stdout

    r = tegami(world.env, "outbox", "cancel", str(ids[0]), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"id": ids[0], "cancelled": True}
    assert ids[0] not in {e["id"] for e in tegami_json(world.env, "outbox")}
    r = tegami(world.env, "outbox", "cancel", str(ids[0]))
    assert r.returncode == 1 and b"NotFound" in r.stderr
    r = tegami(world.env, "outbox", "retry", str(ids[0]))
    assert r.returncode == 1 and b"NotFound" in r.stderr

    r = tegami(world.env, "outbox", "retry", str(ids[1]))
    assert r.returncode == 0, r.stderr
    assert ids[1] in {e["id"] for e in tegami_json(world.env, "outbox")}

    for method in ("RetryOutbox", "CancelOutbox"):
        for bad in (0, 999999, 2 ** 64 - 1):
            assert dbus_error(world, method, "t", bad)[0] == ERR + "NotFound"
    assert tegami(world.env, "outbox", "cancel").returncode == 2
    assert tegami(world.env, "outbox", "frob", "1").returncode == 2


# ---- changes queued for the server ----

BUILD_ROOT = os.environ.get("TEGAMI_BUILD_ROOT", "build")


def pending_rows(data):
    tool = os.path.join(BUILD_ROOT, "store", "pending-dump-tool")
    r = subprocess.run([tool, "--store", os.path.join(data, "mail.db"), "--encrypted"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [line.split() for line in r.stdout.splitlines()]


def test_changes_are_queued_for_imap_accounts(sandbox, tmp_path):
    """SetFlags and Delete record pending changes for an IMAP account (and not for POP3).

    The IMAP engine cannot fill a store in this tree yet, so the store is
    filled by POP3 under the account's name, and tegamid then runs with that
    account configured as IMAP (its server unreachable): the account's
    protocol is what decides whether a change is queued for a server."""
    data = str(tmp_path / "data")
    pop3 = write_config(str(tmp_path / "pop3.ini"), (
        "[store]\nkey = file\n\n[account home]\naddress = %s\npassword = %s\npop3 = pop3s://%s:%d\n"
        "ca_file = %s\n" % (USER, sandbox.users[USER], sandbox.host, sandbox.ports["pop3s"], sandbox.ca_file)))
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    r = subprocess.run([TEGAMID, "--config", pop3, "--data-dir", data, "--once"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    imap = write_config(str(tmp_path / "imap.ini"), (
        "[store]\nkey = file\n\n[account home]\naddress = %s\npassword = x\nimap = imaps://127.0.0.1:%d\n"
        % (USER, free_port())))
    for cfg, queued in ((pop3, False), (imap, True)):
        bus = Bus()
        d = Daemon(bus.env, cfg, data)
        try:
            d.wait_for("running")
            msgs = tegami_json(bus.env, "list", "home", "INBOX")["messages"]
            keep, gone = msgs[0]["id"], msgs[-1]["id"]
            r = tegami(bus.env, "flag", str(keep), "+seen", "-flagged", "+todo")
            assert r.returncode == 0, r.stderr
            assert tegami(bus.env, "delete", str(gone)).returncode == 0
            # The local view changed either way.
            after = {m["id"]: m for m in tegami_json(bus.env, "list", "home", "INBOX")["messages"]}
            assert after[keep]["flags"] == ["\\Seen", "todo"] and gone not in after
        finally:
            assert d.stop() == 0
            bus.close()
        rows = pending_rows(data)
        if not queued:
            assert rows == [], rows
            continue
        assert [row[:2] for row in rows] == [["home", "flags"], ["home", "delete"]], rows
        flags, delete = rows
        assert flags[5:9] == ["1", "4", "todo", "-"]  # \Seen added, \Flagged removed, keyword todo
        assert delete[9] == "1"  # the body stays until the engine is done


# ---- a locked store ----

def test_locked_store_says_locked(tmp_path):
    bus = Bus()
    cfg = write_config(str(tmp_path / "config.ini"),
                       "[store]\nkey = passphrase\n\n[account home]\naddress = a@b.c\npop3 = pop3s://127.0.0.1:1\n")
    d = Daemon(bus.env, cfg, str(tmp_path / "data"))
    try:
        d.wait_for("running")
        for args in (["folders", "home"], ["list", "home", "INBOX"], ["show", "1"], ["flag", "1", "+seen"],
                     ["outbox"], ["outbox", "retry", "1"]):
            r = tegami(bus.env, *args)
            assert r.returncode == 1 and b"Locked" in r.stderr, (args, r.stderr)
    finally:
        assert d.stop() == 0
        bus.close()


# ---- sync, fetch, watch and the counts (issue 7: Sync, FetchNow, OutboxChanged) ----

import poplib  # noqa: E402
import queue  # noqa: E402
import threading  # noqa: E402

ACCOUNT_IFACE = "org.tegami.Mail1.Account"
PROPS = "org.freedesktop.DBus.Properties"


class Watch:
    """`tegami watch` in the background, its stdout lines in a queue."""

    def __init__(self, env, *args):
        self.proc = subprocess.Popen([TEGAMI, "watch", *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=env, text=True)
        self.lines = queue.Queue()
        self.seen = []

        def pump():
            for line in self.proc.stdout:
                self.lines.put(line.rstrip("\n"))
        threading.Thread(target=pump, daemon=True).start()

    def wait_for(self, pred, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("watch printed no matching line; got %r" % self.seen)
            self.seen.append(line)
            if pred(line):
                return line

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=5)


def account_props(w, name):
    obj = w.conn.get_object(NAME, ROOT + "/account/" + name, introspect=False)
    return obj.GetAll(ACCOUNT_IFACE, dbus_interface=PROPS)


def wait_until(pred, timeout=30):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_sync_wait_new_mail_counts_and_watch(world, sandbox):
    """A message delivered, `tegami sync home --wait`: the sync succeeds, NewMail
    reaches `watch` (text and JSON) with its store id, and Unread/Total follow."""
    wait_until(lambda: account_props(world, "home")["State"] == "idle")
    before = account_props(world, "home")
    assert before["Total"] >= 1, before
    st = tegami_json(world.env, "status")
    assert st["accounts"][0]["total"] == before["Total"]
    wj, wt = Watch(world.env, "--json"), Watch(world.env)
    try:
        time.sleep(0.5)  # both have their match rules in place
        sandbox.seed_maildir(USER, "INBOX", [small(7)])
        r = tegami(world.env, "sync", "home", "--wait")
        assert r.returncode == 0, r.stderr
        assert b"home: synced" in r.stdout
        line = wj.wait_for(lambda l: json.loads(l)["signal"] == "NewMail")
        ev = json.loads(line)
        assert ev["path"] == ROOT and ev["args"][:2] == ["home", "INBOX"] and len(ev["args"][2]) == 1, ev
        new_id = ev["args"][2][0]
        wt.wait_for(lambda l: l == "NewMail home INBOX [%d]" % new_id)
        wj.wait_for(lambda l: json.loads(l)["signal"] == "SyncFinished" and json.loads(l)["args"][:2] == ["home", True])
        # PropertiesChanged carries the new counts.
        wj.wait_for(lambda l: json.loads(l)["signal"] == "PropertiesChanged"
                    and json.loads(l)["args"][1].get("Total") == before["Total"] + 1)
    finally:
        wj.close()
        wt.close()
    after = account_props(world, "home")
    assert (after["Total"], after["Unread"]) == (before["Total"] + 1, before["Unread"] + 1), (before, after)
    assert call(world, "GetMessage", "t", new_id)[1]["subject"] == "store test 7"
    # Reading it lowers Unread at once; a sync keeps it; the CLI shows the same numbers.
    assert tegami(world.env, "flag", str(new_id), "+seen").returncode == 0
    assert account_props(world, "home")["Unread"] == before["Unread"]
    assert tegami(world.env, "sync", "home", "--wait").returncode == 0
    assert account_props(world, "home")["Unread"] == before["Unread"]
    st = tegami_json(world.env, "status")
    assert (st["accounts"][0]["unread"], st["accounts"][0]["total"]) == (before["Unread"], before["Total"] + 1)


def test_outbox_changed_and_outbox_size(world):
    msg = b"From: carol@example.org\r\nTo: dave@example.org\r\nSubject: outbox signal\r\n\r\nhi\r\n"
    n0 = account_props(world, "out")["OutboxSize"]
    w = Watch(world.env, "--json")
    try:
        time.sleep(0.5)
        ids = []
        for _ in range(2):
            r = tegami(world.env, "send", "--account", "out", "--json", stdin=msg)
            assert r.returncode == 0, r.stderr
            ids.append(json.loads(r.stdout)["outbox_id"])
        wait_until(lambda: account_props(world, "out")["OutboxSize"] == n0 + 2)
        r = tegami(world.env, "outbox", "cancel", str(ids[0]))
        assert r.returncode == 0, r.stderr
        w.wait_for(lambda l: json.loads(l)["signal"] == "OutboxChanged" and json.loads(l)["args"] == [ids[0],
                                                                                                   "cancelled"])
        wait_until(lambda: account_props(world, "out")["OutboxSize"] == n0 + 1)
        # Retry: "queued" at once.
        for _ in range(20):
            r = tegami(world.env, "outbox", "retry", str(ids[1]))
            if r.returncode == 0:
                break
            time.sleep(0.2)  # Busy while it is being sent
        assert r.returncode == 0, r.stderr
        w.wait_for(lambda l: json.loads(l)["signal"] == "OutboxChanged" and json.loads(l)["args"] == [ids[1],
                                                                                                   "queued"])
        # The woken engine tries what is due and reports its verdict (the server is closed).
        w.wait_for(lambda l: json.loads(l)["signal"] == "OutboxChanged" and json.loads(l)["args"][1] == "retrying")
    finally:
        w.close()
    assert account_props(world, "out")["OutboxSize"] == n0 + 1


from tcpfwd import Forwarder  # noqa: E402


BOB = "bob@example.org"
DAY = 86400


def bob_uidls(sb):
    p = poplib.POP3(sb.host, sb.ports["pop3"], timeout=30)
    try:
        p.user(BOB)
        p.pass_(sb.users[BOB])
        out = {line.decode().split()[1] for line in p.uidl()[1]}
        p.quit()
        return out
    except Exception:
        p.close()
        raise


def test_fetch_dry_run_plans_and_changes_nothing(sandbox, tmp_path):
    """Three messages first downloaded five days ago (pop3-fetch-tool with an
    injected clock) and one new: with pop3_delete_after_days = 3 the dry run
    plans to delete the three "first downloaded pop3_delete_after_days ago or
    more" and fetch the new one; afterwards the server still has all four and
    nothing was stored. The first scheduled fetch fails (the port is closed
    then), so the dry run is the account's next session; a real sync then does
    what the plan said."""
    sandbox.doveadm("expunge", "-u", BOB, "mailbox", "INBOX", "all")
    sandbox.seed_maildir(BOB, "INBOX", [small(20 + i) for i in range(3)])
    data = tmp_path / "data"
    data.mkdir()
    store = str(data / "mail.db")
    common = "[store]\nkey = file\n\n[account home]\naddress = %s\npassword = %s\ntls = none\n" % (
        BOB, sandbox.users[BOB])
    tool_cfg = write_config(str(tmp_path / "tool.ini"),
                            common + "pop3 = pop3://%s:%d\n" % (sandbox.host, sandbox.ports["pop3"]))
    r = subprocess.run([os.environ.get("POP3_FETCH_TOOL", "build/daemon/pop3/pop3-fetch-tool"), "--config", tool_cfg,
                        "--account", "home", "--store", store, "--encrypted", "--now", str(int(time.time()) - 5 * DAY)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    old = bob_uidls(sandbox)
    assert len(old) == 3
    sandbox.seed_maildir(BOB, "INBOX", [small(30)])
    on_server = bob_uidls(sandbox)
    (young,) = on_server - old

    fwd = Forwarder(sandbox.ports["pop3"])
    cfg = write_config(str(tmp_path / "config.ini"), common + "pop3 = pop3://127.0.0.1:%d\npoll_interval = 3600\n"
                       "pop3_delete_after_days = 3\n" % fwd.port)
    bus = Bus()
    d = Daemon(bus.env, cfg, str(data))
    try:
        d.wait_for("next attempt in", timeout=30)  # the first fetch found the port closed
        fwd.open()
        w = type("W", (), {})()
        w.conn, w.env = bus.connect(), bus.env
        assert account_props(w, "home")["Total"] == 3
        plan = call(w, "FetchNow", "sa{sv}", "home", {"dry_run": True})
        got = {str(p["uidl"]): p for p in plan}
        assert set(got) == on_server, got
        for u in old:
            assert got[u]["action"] == "delete" and got[u]["delete"] and not got[u]["download"], got[u]
            assert got[u]["reason"] == "first downloaded pop3_delete_after_days ago or more", got[u]
            assert got[u]["download_reason"] == "stored here already"
        assert got[young]["action"] == "fetch" and got[young]["download"] and not got[young]["delete"]
        assert got[young]["reason"] == "new on the server" and got[young]["size"] > 0
        # The CLI: a table and JSON.
        r = tegami(w.env, "fetch", "home", "--dry-run")
        assert r.returncode == 0, r.stderr
        out = r.stdout.decode()
        assert "UIDL" in out and "REASON" in out and "would download 1 and delete 3" in out, out
        assert sum(1 for l in out.splitlines() if " delete " in l and "pop3_delete_after_days" in l) == 3, out
        rows = tegami_json(w.env, "fetch", "home", "--dry-run")
        assert sorted(r["action"] for r in rows) == ["delete", "delete", "delete", "fetch"]
        # Nothing was deleted on the server, nothing downloaded here.
        assert bob_uidls(sandbox) == on_server
        assert account_props(w, "home")["Total"] == 3
        # A real sync does what the plan said. A dry run asked for while it is at work
        # waits for it (one session per account): it sees the server after the deletions.
        call(w, "Sync", "s", "home")
        d.wait_for("to download", timeout=30)  # the run has listed the server
        plan = call(w, "FetchNow", "sa{sv}", "home", {"dry_run": True})
        assert [(str(p["uidl"]), p["action"], p["download_reason"]) for p in plan] == [
            (young, "keep", "stored here already")], plan
        assert bob_uidls(sandbox) == {young}
        r = tegami(w.env, "sync", "home", "--wait")
        assert r.returncode == 0, r.stderr
        props = account_props(w, "home")
        assert (props["Total"], props["LastError"][0]) == (4, ""), props
        # FetchNow without options is a sync.
        assert list(call(w, "FetchNow", "sa{sv}", "home", {})) == []
        w.conn.close()
        assert d.stop() == 0
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
        fwd.close()
        bus.close()
