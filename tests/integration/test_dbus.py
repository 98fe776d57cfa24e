"""tegamid on D-Bus and the `tegami` CLI, on a private session bus.

The module starts its own dbus-daemon (type session, one service directory in a
temporary folder) and one tegamid on it with two accounts that point at closed
loopback ports: nothing here needs a mail server yet. Checks the contract
(introspection equals ipc/org.tegami.Mail1.xml), ObjectManager, Properties, the
CLI's text, JSON and exit codes, exclusive name ownership, Reload, robustness
against 10,000 malformed calls, bus activation and shutdown.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET

import dbus
import pytest

SOURCE_ROOT = os.environ.get("TEGAMI_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD_ROOT = os.environ.get("TEGAMI_BUILD_ROOT", "build")
XML_PATH = os.path.join(SOURCE_ROOT, "ipc", "org.tegami.Mail1.xml")

NAME = "org.tegami.Mail1"
ROOT = "/org/tegami/Mail1"
IFACE = "org.tegami.Mail1"
ACCOUNT_IFACE = "org.tegami.Mail1.Account"
PROPS = "org.freedesktop.DBus.Properties"
OM = "org.freedesktop.DBus.ObjectManager"
ERR = "org.tegami.Mail1.Error."

CONFIG = """[store]
key = file

[account work]
address = alice@example.org
imap = imaps://127.0.0.1:1993
smtp = smtps://127.0.0.1:1465

[account home.old]
address = bob@example.net
pop3 = pop3://127.0.0.1:1110
tls = none
"""

from tegami_bus import TEGAMI, TEGAMID, Bus, Daemon, write_config  # noqa: E402


def tegami(env, *args):
    return subprocess.run([TEGAMI, *args], capture_output=True, text=True, env=env, timeout=60)


def interfaces_of(xml_text):
    """{interface: (methods {name: (in, out)}, signals {name: sig}, properties {name: (type, access)})}"""
    out = {}
    for iface in ET.fromstring(xml_text).findall("interface"):
        methods = {}
        for m in iface.findall("method"):
            args = m.findall("arg")
            methods[m.get("name")] = ("".join(a.get("type") for a in args if a.get("direction", "in") == "in"),
                                      "".join(a.get("type") for a in args if a.get("direction") == "out"))
        signals = {s.get("name"): "".join(a.get("type") for a in s.findall("arg")) for s in iface.findall("signal")}
        props = {p.get("name"): (p.get("type"), p.get("access")) for p in iface.findall("property")}
        out[iface.get("name")] = (methods, signals, props)
    return out


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


# ---- fixtures ----

@pytest.fixture(scope="module")
def env():
    """A private bus with one tegamid on it; yields a namespace of handles."""
    bus = Bus()
    work = tempfile.mkdtemp(prefix="tgd")
    cfg = write_config(os.path.join(work, "config.ini"), CONFIG)
    d = Daemon(bus.env, cfg, os.path.join(work, "data"))
    try:
        d.wait_for("running")
        ns = type("Env", (), {})()
        ns.bus, ns.daemon, ns.cfg, ns.work = bus, d, cfg, work
        ns.env = bus.env
        ns.conn = bus.connect()
        yield ns
        ns.conn.close()
        t0 = time.monotonic()
        assert d.stop() == 0
        assert time.monotonic() - t0 < 1.0
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
        bus.close()
        shutil.rmtree(work, ignore_errors=True)


def root(env):
    return env.conn.get_object(NAME, ROOT, introspect=False)


# ---- the CLI ----

def test_cli_status_text(env):
    r = tegami(env.env, "status")
    assert r.returncode == 0, r.stderr
    assert "tegamid 0.1.0: running, 2 accounts" in r.stdout
    lines = r.stdout.splitlines()
    # The scheduler tries the (closed) servers at once: any state but "locked".
    states = ("idle", "connecting", "syncing", "error")
    assert any(l.split()[:2] == ["work", "imap"] and l.split()[2] in states for l in lines), lines
    assert any(l.split()[:2] == ["home.old", "pop3"] and l.split()[2] in states for l in lines), lines
    assert "never" in r.stdout


def settled(env, timeout=15):
    """status --json once both accounts' first sync has failed: neither has credentials here, which
    tegamid reports as an account error (AuthFailed) and does not retry on its own."""
    deadline = time.monotonic() + timeout
    while True:
        r = tegami(env.env, "status", "--json")
        assert r.returncode == 0, r.stderr
        st = json.loads(r.stdout)
        if all(a["state"] == "error" for a in st["accounts"]) or time.monotonic() > deadline:
            return st
        time.sleep(0.1)


def test_cli_status_json(env):
    st = settled(env)
    assert st["version"] == "0.1.0" and st["state"] == "running" and st["config"] == env.cfg
    assert [a["name"] for a in st["accounts"]] == ["work", "home.old"]
    work = st["accounts"][0]
    assert work["protocol"] == "imap" and work["server"] == "imaps://127.0.0.1:1993"
    assert work["send_server"] == "smtps://127.0.0.1:1465" and work["state"] == "error"
    assert work["path"] == ROOT + "/account/work"
    assert work["last_error"]["name"] == "org.tegami.Mail1.Error.AuthFailed", work
    assert work["last_error"]["message"].startswith("account work"), work
    assert st["accounts"][1]["path"] == ROOT + "/account/home_2eold"


def test_cli_accounts_text_and_json(env):
    r = tegami(env.env, "accounts")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "PROTO", "SERVER", "SENDING", "ADDRESS"]
    assert lines[1].split() == ["work", "imap", "imaps://127.0.0.1:1993", "smtps://127.0.0.1:1465",
                                "alice@example.org"]
    assert lines[2].split() == ["home.old", "pop3", "pop3://127.0.0.1:1110", "-", "bob@example.net"]
    r = tegami(env.env, "--json", "accounts")
    assert r.returncode == 0, r.stderr
    accounts = json.loads(r.stdout)
    assert [(a["name"], a["address"], a["protocol"]) for a in accounts] == [
        ("work", "alice@example.org", "imap"), ("home.old", "bob@example.net", "pop3")]


def test_cli_usage_and_exit_codes(env):
    r = tegami(env.env, "--help")
    assert r.returncode == 0 and "status" in r.stdout and "--json" in r.stdout
    r = tegami(env.env, "--version")
    assert r.returncode == 0 and r.stdout.startswith("tegami ")
    assert tegami(env.env).returncode == 2
    r = tegami(env.env, "frobnicate")
    assert r.returncode == 2 and "unknown command" in r.stderr
    r = tegami(env.env, "search", "nothing-matches-this")  # an empty result, not an error
    assert r.returncode == 0, r.stderr
    for cmd in (["status", "--wait"], ["sync", "--dry-run"], ["fetch"], ["fetch", "a", "b"], ["watch", "x"]):
        assert tegami(env.env, *cmd).returncode == 2, cmd
    r = tegami(env.env, "status", "extra")
    assert r.returncode == 2
    bad = dict(env.env, DBUS_SESSION_BUS_ADDRESS="unix:path=/nonexistent/bus")
    r = tegami(bad, "status")
    assert r.returncode == 69 and "session bus" in r.stderr


# ---- objects and properties ----

def test_managed_objects(env):
    settled(env)
    objs = root(env).GetManagedObjects(dbus_interface=OM)
    assert sorted(objs) == [ROOT + "/account/home_2eold", ROOT + "/account/work"]
    work = objs[ROOT + "/account/work"][ACCOUNT_IFACE]
    assert work["Name"] == "work" and work["Protocol"] == "imap" and work["State"] == "error"
    assert work["Server"] == "imaps://127.0.0.1:1993" and work["SendServer"] == "smtps://127.0.0.1:1465"
    assert tuple(work["Quota"]) == (0, 0) and work["LastError"][0] == "org.tegami.Mail1.Error.AuthFailed"
    home = objs[ROOT + "/account/home_2eold"][ACCOUNT_IFACE]
    assert home["Name"] == "home.old" and home["Protocol"] == "pop3" and home["SendServer"] == ""


def test_properties(env):
    acct = env.conn.get_object(NAME, ROOT + "/account/work", introspect=False)
    assert acct.Get(ACCOUNT_IFACE, "Address", dbus_interface=PROPS) == "alice@example.org"
    assert acct.Get(ACCOUNT_IFACE, "LastSync", dbus_interface=PROPS) == 0
    assert acct.Get("", "Total", dbus_interface=PROPS) == 0
    props = acct.GetAll(ACCOUNT_IFACE, dbus_interface=PROPS)
    assert set(props) == {"Name", "Address", "Protocol", "Server", "SendServer", "State", "LastSync", "Unread",
                          "Total", "Quota", "OutboxSize", "LastError"}
    assert props["Name"] == "work"
    assert root(env).Get(IFACE, "Version", dbus_interface=PROPS) == "0.1.0"
    assert root(env).GetAll(IFACE, dbus_interface=PROPS) == {"Version": "0.1.0", "State": "running"}
    assert root(env).GetAll(OM, dbus_interface=PROPS) == {}
    for call, name in [
        (lambda: acct.Get(ACCOUNT_IFACE, "Nope", dbus_interface=PROPS), "UnknownProperty"),
        (lambda: acct.Get("org.example.Nope", "Name", dbus_interface=PROPS), "UnknownInterface"),
        (lambda: env.conn.call_blocking(NAME, ROOT + "/account/work", PROPS, "Set", "ssv",
                                        (ACCOUNT_IFACE, "Name", dbus.String("x", variant_level=1))),
         "PropertyReadOnly"),
        (lambda: acct.Set(ACCOUNT_IFACE, "Name", "x", dbus_interface=PROPS), "InvalidArgs"),  # sent as (sss)
        (lambda: acct.GetAll("org.example.Nope", dbus_interface=PROPS), "UnknownInterface"),
    ]:
        with pytest.raises(dbus.exceptions.DBusException) as e:
            call()
        assert e.value.get_dbus_name() == "org.freedesktop.DBus.Error." + name


def test_status_method(env):
    daemon, accounts = root(env).Status(dbus_interface=IFACE)
    assert daemon["version"] == "0.1.0" and daemon["state"] == "running" and daemon["config"] == env.cfg
    assert [(str(p), a["Name"]) for p, a in accounts] == [(ROOT + "/account/work", "work"),
                                                         (ROOT + "/account/home_2eold", "home.old")]


def test_peer_ping(env):
    root(env).Ping(dbus_interface="org.freedesktop.DBus.Peer")


@pytest.mark.parametrize("method,args,sig,error", [
    ("Sync", ("nope",), "s", "NotFound"),
    ("FetchNow", ("home.old", {"dry_run": True}), "sa{sv}", "AuthFailed"),  # it has no password
    ("FetchNow", ("home.old", {"dry_run": "yes"}), "sa{sv}", "InvalidArgs"),
    ("FetchNow", ("home.old", {"colour": True}), "sa{sv}", "InvalidArgs"),
    ("FetchNow", ("work", {"dry_run": True}), "sa{sv}", "NotSupported"),  # IMAP
    ("FetchNow", ("nope", {}), "sa{sv}", "NotFound"),
    ("ListFolders", ("nope",), "s", "NotFound"),
    ("ListMessages", ("work", "INBOX", 0, 50), "sstu", "NotFound"),  # nothing synced: no folders
    ("ListMessages", ("work", "INBOX", 0, 0), "sstu", "InvalidArgs"),
    ("GetMessage", (7,), "t", "NotFound"),
    ("Search", ("hello", {"account": "nope", "limit": dbus.UInt32(5)}), "sa{sv}", "NotFound"),
    ("Search", ("hello", {"colour": "blue"}), "sa{sv}", "InvalidArgs"),
    ("SetFlags", ([1], ["\\Seen"], []), "atasas", "NotFound"),
    ("SetFlags", ([1], ["two words"], []), "atasas", "InvalidArgs"),
    ("Move", ([1], "work", "Archive"), "atss", "NotFound"),
    ("Delete", ([], ), "at", "InvalidArgs"),
    ("SendBytes", ("work", b"Subject: x\r\n\r\nhi\r\n", {}), "saya{sv}", "InvalidArgs"),  # no sender
    ("SendBytes", ("home.old", b"From: a@b.c\r\nTo: d@e.f\r\n\r\nhi\r\n", {}), "saya{sv}",
     "NotFound"),  # home.old has no smtp server
    ("SendBytes", ("work", b"From: a@b.c\r\n\r\nhi\r\n", {"colour": "blue"}), "saya{sv}", "InvalidArgs"),
    ("RetryOutbox", (999999,), "t", "NotFound"),
    ("CancelOutbox", (2 ** 64 - 1,), "t", "NotFound"),
    ("CancelOutbox", (0,), "t", "NotFound"),
    ("Unlock", (b"secret",), "ay", "InvalidArgs"),  # the store is not locked
    ("Status", ("x",), "s", "InvalidArgs"),
])
def test_typed_errors(env, method, args, sig, error):
    with pytest.raises(dbus.exceptions.DBusException) as e:
        env.conn.call_blocking(NAME, ROOT, IFACE, method, sig, args)
    assert e.value.get_dbus_name() == ERR + error
    assert e.value.get_dbus_message()


def test_sync_starts_and_wait_names_the_failure(env):
    settled(env)
    assert list(root(env).Sync("", dbus_interface=IFACE)) == ["work", "home.old"]
    assert list(root(env).Sync("home.old", dbus_interface=IFACE)) == ["home.old"]
    r = tegami(env.env, "sync", "work")
    assert r.returncode == 0 and "sync of work started" in r.stdout, r
    # Neither server is reachable: --wait follows the run and fails, naming the account and the error.
    r = tegami(env.env, "sync", "home.old", "--wait")
    assert r.returncode == 1, r
    assert "home.old: failed" in r.stdout and "tegami sync: home.old failed: " + ERR in r.stderr, r
    r = tegami(env.env, "sync", "--wait", "--json")
    assert r.returncode == 1, r
    out = json.loads(r.stdout)
    assert sorted(o["account"] for o in out) == ["home.old", "work"]
    assert all(not o["success"] and o["error"].startswith(ERR) and o["message"] for o in out), out


def test_fetch_cli_errors(env):
    r = tegami(env.env, "fetch", "work", "--dry-run")
    assert r.returncode == 1 and "NotSupported" in r.stderr and "IMAP" in r.stderr, r
    r = tegami(env.env, "fetch", "nope", "--dry-run")
    assert r.returncode == 1 and "NotFound" in r.stderr, r


def test_send_with_fd(env, tmp_path):
    """A message through an fd is stored in the outbox (the server is down: it waits there)."""
    msg = tmp_path / "msg.eml"
    msg.write_bytes(b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: x\r\n\r\nhi\r\n")
    with open(msg, "rb") as f:
        first = env.conn.call_blocking(NAME, ROOT, IFACE, "Send", "sha{sv}", ("work", dbus.types.UnixFd(f), {}))
    with open(msg, "rb") as f:
        second = env.conn.call_blocking(NAME, ROOT, IFACE, "Send", "sha{sv}",
                                        ("", dbus.types.UnixFd(f), {"recipients": ["carol@example.org"]}))
    assert first > 0 and second > first
    # A pipe could block the daemon: refused.
    r, w = os.pipe()
    os.write(w, msg.read_bytes())
    os.close(w)
    with pytest.raises(dbus.exceptions.DBusException) as e:
        env.conn.call_blocking(NAME, ROOT, IFACE, "Send", "sha{sv}", ("work", dbus.types.UnixFd(r), {}))
    os.close(r)
    assert e.value.get_dbus_name() == ERR + "InvalidArgs" and "regular file" in e.value.get_dbus_message()


# ---- the contract ----

def test_introspection_matches_installed_xml(env):
    with open(XML_PATH) as f:
        text = f.read()
    want = interfaces_of(text)
    assert set(want) == {IFACE, ACCOUNT_IFACE}

    got_root = root(env).Introspect(dbus_interface="org.freedesktop.DBus.Introspectable")
    got_acct = env.conn.get_object(NAME, ROOT + "/account/work", introspect=False).Introspect(
        dbus_interface="org.freedesktop.DBus.Introspectable")
    r_ifaces, a_ifaces = interfaces_of(got_root), interfaces_of(got_acct)
    assert r_ifaces[IFACE] == want[IFACE]
    assert a_ifaces[ACCOUNT_IFACE] == want[ACCOUNT_IFACE]
    for std in (PROPS, OM, "org.freedesktop.DBus.Introspectable", "org.freedesktop.DBus.Peer"):
        assert std in r_ifaces
    assert PROPS in a_ifaces and OM not in a_ifaces
    # The installed text itself, doc comments included, is what Introspect serves.
    start = text.index('  <interface name="org.tegami.Mail1">')
    assert text[start:text.index("</interface>", start)] in got_root
    # Child nodes make the tree walkable (busctl tree, d-feet).
    assert [n.get("name") for n in ET.fromstring(got_root).findall("node")] == ["account"]
    accounts = env.conn.get_object(NAME, ROOT + "/account", introspect=False).Introspect(
        dbus_interface="org.freedesktop.DBus.Introspectable")
    assert sorted(n.get("name") for n in ET.fromstring(accounts).findall("node")) == ["home_2eold", "work"]


def test_gdbus_and_busctl_introspect_match_installed_xml(env):
    with open(XML_PATH) as f:
        want = interfaces_of(f.read())
    for path, iface in ((ROOT, IFACE), (ROOT + "/account/work", ACCOUNT_IFACE)):
        r = subprocess.run(["gdbus", "introspect", "--session", "--dest", NAME, "--object-path", path, "--xml"],
                           capture_output=True, text=True, env=env.env, timeout=30)
        assert r.returncode == 0, r.stderr
        assert interfaces_of(r.stdout)[iface] == want[iface]
        r = subprocess.run(["busctl", "--address=" + env.bus.address, "introspect", "--xml-interface", NAME, path],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert interfaces_of(r.stdout)[iface] == want[iface]


def test_xml_is_installed_to_dbus_interfaces():
    plan_path = os.path.join(BUILD_ROOT, "meson-info", "intro-install_plan.json")
    with open(plan_path) as f:
        plan = json.load(f)
    dests = [v["destination"] for group in plan.values() for v in group.values()]
    assert "{datadir}/dbus-1/interfaces/org.tegami.Mail1.xml" in dests


# ---- exclusive name, --once ----

def test_second_tegamid_exits_with_clear_message(env):
    d = Daemon(env.env, env.cfg, os.path.join(env.work, "data2"))
    rc = d.proc.wait(timeout=10)
    err = "\n".join(iter(lambda: d.lines.get(timeout=5), None))
    assert rc != 0
    assert "org.tegami.Mail1 is already owned" in err and "another tegamid" in err
    assert str(env.daemon.proc.pid) in err
    assert "running:" not in err
    # The first one still answers.
    assert tegami(env.env, "status").returncode == 0


def test_once_does_not_take_the_name(env):
    r = subprocess.run([TEGAMID, "--config", env.cfg, "--data-dir", os.path.join(env.work, "data3"), "--once"],
                       capture_output=True, text=True, env=env.env, timeout=30)
    assert "already owned" not in r.stderr
    assert "--once" in r.stderr  # fails only because no sync engine exists yet


# ---- robustness ----

def malformed_calls(fd_file):
    """Yields ((path, interface, member, signature, args), ok) forever: mostly
    malformed calls, with a valid one now and then; huge payloads only every
    50th call (they test the same paths and would only slow the test down)."""
    huge = "x" * (1 << 20)
    deep = {"account": dbus.Array([dbus.Int32(i) for i in range(20000)], signature="i")}
    bad = [
        (ROOT, IFACE, "Sync", "i", (5,)),
        (ROOT, IFACE, "Sync", "ss", ("work", "work")),
        (ROOT, IFACE, "Sync", "s", ("\u624b\u7d19" * 40,)),
        (ROOT, IFACE, "FetchNow", "sb", ("", False)),
        (ROOT, IFACE, "ListMessages", "sstu", ("work", "", 2 ** 64 - 1, 2 ** 32 - 1)),
        (ROOT, IFACE, "ListMessages", "ssuu", ("work", "INBOX", 0, 5)),
        (ROOT, IFACE, "GetMessage", "t", (2 ** 64 - 1,)),
        (ROOT, IFACE, "GetMessage", "s", ("1",)),
        (ROOT, IFACE, "Search", "sa{sv}", ("", {})),
        (ROOT, IFACE, "Search", "sa{sv}", ("q", {"account": "nope", "limit": dbus.UInt32(1)})),
        (ROOT, IFACE, "SetFlags", "atasas", ([1, 2], ["\\Seen", "x" * 500], [])),
        (ROOT, IFACE, "Move", "atss", ([0], "work", "INBOX")),
        (ROOT, IFACE, "Delete", "at", ([],)),
        (ROOT, IFACE, "SendBytes", "say", ("work", b"")),
        (ROOT, IFACE, "Send", "sh", ("work", dbus.types.UnixFd(fd_file))),
        (ROOT, IFACE, "Unlock", "ay", (b"",)),
        (ROOT, IFACE, "Reload", "s", ("now",)),
        (ROOT, IFACE, "Frobnicate", "", ()),
        (ROOT, "org.example.Nope", "Status", "", ()),
        (ROOT, None, "Status", "i", (1,)),
        (ROOT, PROPS, "Get", "ss", (IFACE, "Nope")),
        (ROOT, PROPS, "Get", "s", (IFACE,)),
        (ROOT, PROPS, "Set", "ssv", (IFACE, "State", dbus.String("locked", variant_level=1))),
        (ROOT, OM, "GetManagedObjects", "s", ("x",)),
        (ROOT + "/account/nope", PROPS, "GetAll", "s", (ACCOUNT_IFACE,)),
        (ROOT + "/account/_zz", PROPS, "GetAll", "s", (ACCOUNT_IFACE,)),
        (ROOT + "/account/work/deeper", PROPS, "GetAll", "s", (ACCOUNT_IFACE,)),
        (ROOT + "/account/work", IFACE, "Status", "", ()),
        (ROOT + "/account/work", PROPS, "GetAll", "i", (1,)),
        ("/org/example", "org.freedesktop.DBus.Introspectable", "Introspect", "", ()),
        ("/", IFACE, "Status", "", ()),
    ]
    big = [
        (ROOT, IFACE, "Sync", "s", (huge,)),
        (ROOT, IFACE, "ListMessages", "sstu", ("work", huge, 0, 5)),
        (ROOT, IFACE, "Search", "sa{sv}", ("q", deep)),
        (ROOT, IFACE, "SetFlags", "atasas", (list(range(1, 20002)), [], [])),
        (ROOT, IFACE, "SendBytes", "say", ("work", b"x" * (2 << 20))),
        (ROOT, PROPS, "Get", "ss", (huge, huge)),
    ]
    good = [
        (ROOT, IFACE, "Status", "", ()),
        (ROOT + "/account/work", PROPS, "GetAll", "s", ("",)),
    ]
    i = 0
    while True:
        if i % 50 == 0:
            yield big[(i // 50) % len(big)], False
        elif i % 10 == 0:
            yield good[(i // 10) % len(good)], True
        else:
            yield bad[i % len(bad)], False
        i += 1


def test_malformed_calls_never_hurt(env, tmp_path):
    fd_path = tmp_path / "fd"
    fd_path.write_bytes(b"x")
    pid = env.daemon.proc.pid
    fds_before = len(os.listdir(f"/proc/{pid}/fd"))
    bad_names = {"org.freedesktop.DBus.Error.NoReply", "org.freedesktop.DBus.Error.ServiceUnknown",
                 "org.freedesktop.DBus.Error.NameHasNoOwner", "org.freedesktop.DBus.Error.Disconnected",
                 "org.freedesktop.DBus.Error.NoMemory"}
    rss_1k = None
    with open(fd_path, "rb") as fd_file:
        gen = malformed_calls(fd_file)
        for n in range(1, 10001):
            (path, iface, member, sig, args), ok = next(gen)
            try:
                env.conn.call_blocking(NAME, path, iface, member, sig, args, timeout=10)
                assert ok, (path, iface, member, sig)
            except dbus.exceptions.DBusException as e:
                name = e.get_dbus_name()
                assert not ok, (path, member, name, e.get_dbus_message())
                assert name not in bad_names, (path, member, name)
                assert name.startswith(ERR) or name.startswith("org.freedesktop.DBus.Error."), name
            if n == 1000:
                rss_1k = rss_kib(pid)
    rss_10k = rss_kib(pid)
    assert env.daemon.proc.poll() is None
    # Bounded: after warm-up, 9,000 more calls must not keep growing the heap.
    assert rss_10k - rss_1k < 4096, (rss_1k, rss_10k)
    # File descriptors passed with Send are not kept.
    assert len(os.listdir(f"/proc/{pid}/fd")) <= fds_before
    # And it still answers correctly.
    daemon, accounts = root(env).Status(dbus_interface=IFACE)
    assert daemon["state"] == "running" and [a["Name"] for _, a in accounts] == ["work", "home.old"]


# ---- Reload ----

def test_reload(env):
    from dbus.mainloop.glib import DBusGMainLoop
    from gi.repository import GLib

    conn = dbus.bus.BusConnection(env.bus.address, mainloop=DBusGMainLoop())
    signals = []
    conn.add_signal_receiver(lambda *a, **kw: signals.append((kw["member"], a)), dbus_interface=OM,
                             member_keyword="member")
    conn.add_signal_receiver(lambda *a, **kw: signals.append((kw["member"], a)), dbus_interface=PROPS,
                             member_keyword="member")
    mgr = conn.get_object(NAME, ROOT, introspect=False)

    def pump(until, timeout=5.0):
        ctx = GLib.MainContext.default()
        deadline = time.monotonic() + timeout
        while not until() and time.monotonic() < deadline:
            ctx.iteration(False) or time.sleep(0.01)

    try:
        # A broken file: InvalidConfig naming file and line; the daemon keeps the old config.
        write_config(env.cfg, CONFIG + "[account broken]\nimap = imaps://h\n")
        with pytest.raises(dbus.exceptions.DBusException) as e:
            mgr.Reload(dbus_interface=IFACE)
        assert e.value.get_dbus_name() == ERR + "InvalidConfig"
        assert f"{env.cfg}:" in e.value.get_dbus_message() and '"address"' in e.value.get_dbus_message()
        assert env.daemon.proc.poll() is None
        assert len(mgr.Status(dbus_interface=IFACE)[1]) == 2

        # A good file: one account added, one changed, one removed, all announced.
        write_config(env.cfg, CONFIG.replace("alice@example.org", "alice2@example.org").replace(
            "[account home.old]", "[account home]") + "[account third]\naddress = c@example.org\n"
                                                      "pop3 = pop3s://127.0.0.1:1995\n")
        mgr.Reload(dbus_interface=IFACE)
        pump(lambda: len(signals) >= 4)
        got = {(m, str(a[0]) if m != "PropertiesChanged" else str(a[1].get("Address"))) for m, a in signals}
        assert ("InterfacesRemoved", ROOT + "/account/home_2eold") in got
        assert ("InterfacesAdded", ROOT + "/account/home") in got
        assert ("InterfacesAdded", ROOT + "/account/third") in got
        assert ("PropertiesChanged", "alice2@example.org") in got
        names = [a["Name"] for _, a in mgr.Status(dbus_interface=IFACE)[1]]
        assert names == ["work", "home", "third"]
        assert mgr.Status(dbus_interface=IFACE)[0]["reloads"] >= 1
    finally:
        write_config(env.cfg, CONFIG)
        mgr.Reload(dbus_interface=IFACE)
        conn.close()
    assert [a["Name"] for _, a in root(env).Status(dbus_interface=IFACE)[1]] == ["work", "home.old"]


# ---- activation, no bus, shutdown ----

def test_bus_activation_starts_tegamid(tmp_path):
    bus = Bus()
    try:
        cfg = write_config(tmp_path / "config.ini", CONFIG)
        # Nothing to activate yet: the CLI says the daemon is unavailable.
        r = tegami(bus.env, "status")
        assert r.returncode == 69 and "not running" in r.stderr

        with open(os.path.join(bus.dir, "services", "org.tegami.Mail1.service"), "w") as f:
            f.write("[D-BUS Service]\nName=org.tegami.Mail1\n"
                    f"Exec={os.path.abspath(TEGAMID)} --config {cfg} --data-dir {tmp_path / 'data'}\n")
        r = tegami(bus.env, "status")
        assert r.returncode == 0, r.stderr
        assert "running, 2 accounts" in r.stdout

        conn = bus.connect()
        pid = int(conn.call_blocking("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                     "GetConnectionUnixProcessID", "s", (NAME,)))
        conn.close()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            assert os.path.basename(f.read().split(b"\0")[0]) == b"tegamid"
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(") ", 1)[1].startswith("Z"):
                        break
            except FileNotFoundError:
                break
            time.sleep(0.02)
        else:
            raise AssertionError("activated tegamid did not exit on SIGTERM")
    finally:
        bus.close()


def test_without_session_bus_runs_and_warns(tmp_path):
    cfg = write_config(tmp_path / "config.ini", CONFIG)
    e = {k: v for k, v in os.environ.items()
         if k not in ("DBUS_SESSION_BUS_ADDRESS", "DBUS_STARTER_ADDRESS", "XDG_RUNTIME_DIR")}
    d = Daemon(e, cfg, str(tmp_path / "data"))
    try:
        line = d.wait_for("continuing without D-Bus")
        assert "warning" in line
        d.wait_for("running:")
    finally:
        t0 = time.monotonic()
        assert d.stop() == 0
        assert time.monotonic() - t0 < 1.0


def test_sigterm_on_the_bus_exits_zero_within_a_second(tmp_path):
    bus = Bus()
    try:
        cfg = write_config(tmp_path / "config.ini", CONFIG)
        d = Daemon(bus.env, cfg, str(tmp_path / "data"))
        d.wait_for("running:")
        assert tegami(bus.env, "status").returncode == 0
        t0 = time.monotonic()
        assert d.stop() == 0
        assert time.monotonic() - t0 < 1.0
        # The name is released with the connection.
        r = tegami(bus.env, "status")
        assert r.returncode == 69
    finally:
        bus.close()


def test_losing_the_bus_stops_tegamid(tmp_path):
    bus = Bus()
    try:
        cfg = write_config(tmp_path / "config.ini", CONFIG)
        d = Daemon(bus.env, cfg, str(tmp_path / "data"))
        d.wait_for("running:")
    finally:
        bus.close()
    assert d.proc.wait(timeout=5) == 0
    d.wait_for("lost the session bus")
