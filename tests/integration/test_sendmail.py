"""Sending through the daemon: tegami-sendmail, `tegami send` and git send-email,
against the harness' real Postfix → LMTP → Dovecot, with tegamid on a private
session bus (started by D-Bus activation in one case)."""
import imaplib
import json
import os
import ssl
import subprocess
import time
import uuid

import pytest

from tcpfwd import Forwarder
from tegami_bus import TEGAMI, TEGAMID, Bus, Daemon, write_config

SENDMAIL = os.path.abspath(os.environ.get("TEGAMI_SENDMAIL", "build/clients/tegami-sendmail"))


def config(sb, tmp_path):
    return write_config(str(tmp_path / "config.ini"), (
        "[store]\nkey = file\n\n"
        "[account work]\naddress = alice@example.org\npassword = %s\nimap = imaps://%s:%d\n"
        "smtp = smtp://%s:%d\nca_file = %s\n"
        % (sb.users["alice@example.org"], sb.host, sb.ports["imaps"], sb.host, sb.ports["submission"],
           sb.ca_file)))


@pytest.fixture
def daemon(sandbox, tmp_path):
    bus = Bus()
    d = Daemon(bus.env, config(sandbox, tmp_path), str(tmp_path / "data"))
    d.wait_for("running")
    d.bus = bus
    yield d
    assert d.stop() == 0
    bus.close()


def token():
    return "tok-" + uuid.uuid4().hex[:12]


def delivered(sb, user, tok, timeout=30.0, expect=True):
    """Raw messages in user's INBOX whose Subject holds tok (waits for delivery)."""
    ctx = ssl.create_default_context(cafile=sb.ca_file)
    deadline = time.monotonic() + timeout
    while True:
        with imaplib.IMAP4_SSL(sb.host, sb.ports["imaps"], ssl_context=ctx) as m:
            m.login(user, sb.users[user])
            m.select("INBOX", readonly=True)
            _, data = m.search(None, "SUBJECT", tok)
            found = [m.fetch(i, "(BODY.PEEK[])")[1][0][1] for i in data[0].split()]
        if found or not expect or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def sendmail(d, *args, message):
    return subprocess.run([SENDMAIL, *args], input=message, env=d.bus.env, capture_output=True, timeout=120)


def test_sendmail_t_delivers_without_bcc(sandbox, daemon):
    tok = token()
    msg = ("From: Alice <alice@example.org>\nTo: bob@example.org\nBcc: carol@example.org\n"
           "Subject: %s\n\nHello through the outbox.\n.\nafter a dot line that -i keeps\n" % tok).encode()
    r = sendmail(daemon, "-t", "-i", message=msg)
    assert r.returncode == 0, r.stderr
    for user in ("bob@example.org", "carol@example.org"):
        got = delivered(sandbox, user, tok)
        assert len(got) == 1, (user, got)
        assert b"Bcc:" not in got[0] and b"carol@example.org" not in got[0].split(b"\r\n\r\n")[0]
        assert b"after a dot line that -i keeps" in got[0]
        assert b"Message-ID:" in got[0] and b"Date:" in got[0]


def test_sendmail_recipients_as_arguments_and_dot_ends(sandbox, daemon):
    tok = token()
    msg = ("From: alice@example.org\nTo: nobody-listed@example.org\nSubject: %s\n\nbody\n.\nnot sent\n"
           % tok).encode()
    r = sendmail(daemon, "-f", "alice@example.org", "bob@example.org", message=msg)
    assert r.returncode == 0, r.stderr
    got = delivered(sandbox, "bob@example.org", tok)
    assert len(got) == 1 and b"not sent" not in got[0]


def test_sendmail_exit_codes(sandbox, daemon):
    r = sendmail(daemon, "-t", message=b"Subject: no sender, no recipient\n\nx\n")
    assert r.returncode == 65, r.stderr          # EX_DATAERR
    assert b"message refused" in r.stderr
    r = sendmail(daemon, "--account", "nope", "bob@example.org", message=b"From: alice@example.org\n\nx\n")
    assert r.returncode == 67 and b"nope" in r.stderr, r.stderr   # EX_NOUSER
    r = sendmail(daemon, message=b"From: alice@example.org\n\nx\n")
    assert r.returncode == 64, r.stderr          # EX_USAGE: no recipients
    r = subprocess.run([SENDMAIL, "-t"], input=b"x", capture_output=True,
                       env=dict(daemon.bus.env, DBUS_SESSION_BUS_ADDRESS="unix:path=/nonexistent"))
    assert r.returncode == 69, r.stderr          # EX_UNAVAILABLE


def test_tegami_send(sandbox, daemon):
    tok = token()
    msg = ("From: alice@example.org\nTo: bob@example.org\nSubject: %s\n\nvia the CLI\n" % tok).encode()
    r = subprocess.run([TEGAMI, "send", "--account", "work", "--json"], input=msg, env=daemon.bus.env,
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert b'"outbox_id": ' in r.stdout
    assert len(delivered(sandbox, "bob@example.org", tok)) == 1


def test_git_send_email(sandbox, daemon, tmp_path):
    repo = tmp_path / "repo"
    env = dict(daemon.bus.env, GIT_AUTHOR_NAME="Alice", GIT_AUTHOR_EMAIL="alice@example.org",
               GIT_COMMITTER_NAME="Alice", GIT_COMMITTER_EMAIL="alice@example.org", HOME=str(tmp_path))
    tok = token()
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    (repo / "README").write_text("hello\n")
    subprocess.run(["git", "-C", str(repo), "add", "README"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "Add README " + tok], check=True, env=env)
    r = subprocess.run(["git", "-C", str(repo), "send-email", "--sendmail-cmd=" + SENDMAIL, "--confirm=never",
                        "--to=bob@example.org", "--from=Alice <alice@example.org>", "--suppress-cc=all",
                        "-1"], env=env, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    got = delivered(sandbox, "bob@example.org", tok)
    assert len(got) == 1 and b"+hello" in got[0]


def test_activation_starts_tegamid(sandbox, tmp_path):
    """With tegamid not running, the first tegami-sendmail starts it through D-Bus activation."""
    bus = Bus()
    try:
        cfg = config(sandbox, tmp_path)
        with open(os.path.join(bus.dir, "services", "org.tegami.Mail1.service"), "w") as f:
            f.write("[D-BUS Service]\nName=org.tegami.Mail1\nExec=%s --config %s --data-dir %s\n"
                    % (TEGAMID, cfg, tmp_path / "data"))
        tok = token()
        msg = ("From: alice@example.org\nTo: bob@example.org\nSubject: %s\n\nactivated\n" % tok).encode()
        r = subprocess.run([SENDMAIL, "-t"], input=msg, env=bus.env, capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert len(delivered(sandbox, "bob@example.org", tok)) == 1
    finally:
        # Stop the activated tegamid: the bus knows its pid.
        pid = subprocess.run(["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus", "/",
                              "org.freedesktop.DBus.GetConnectionUnixProcessID", "string:org.tegami.Mail1"],
                             env=bus.env, capture_output=True, text=True).stdout.split()
        if pid and pid[-1].isdigit():
            os.kill(int(pid[-1]), 15)
            time.sleep(0.5)
        bus.close()


def test_outbox_goes_out_when_the_network_returns(sandbox, tmp_path):
    """Offline: the message waits (backoff of a minute or more); an interface address appearing
    (what a reconnect looks like to the kernel) sends it within seconds, with no user action."""
    fwd = Forwarder(sandbox.ports["smtps"])  # refuses connections until opened
    cfg = write_config(str(tmp_path / "config.ini"), (
        "[store]\nkey = file\n\n"
        "[account work]\naddress = alice@example.org\npassword = %s\nimap = imaps://%s:%d\n"
        "smtp = smtps://%s:%d\nca_file = %s\n"
        % (sandbox.users["alice@example.org"], sandbox.host, sandbox.ports["imaps"], sandbox.host, fwd.port,
           sandbox.ca_file)))
    bus = Bus()
    d = Daemon(bus.env, cfg, str(tmp_path / "data"), "--log-level", "debug")
    d.bus = bus
    added = False
    try:
        d.wait_for("running")
        tok = token()
        msg = ("From: alice@example.org\nTo: bob@example.org\nSubject: %s\n\noffline\n" % tok).encode()
        r = sendmail(d, "-t", message=msg)
        assert r.returncode == 0, r.stderr
        d.wait_for("refused", timeout=20)  # the first attempt failed: connection refused
        fwd.open()
        time.sleep(1.5)
        assert delivered(sandbox, "bob@example.org", tok, timeout=0, expect=False) == []  # still waiting
        t0 = time.monotonic()
        subprocess.run(["ip", "addr", "add", "127.0.0.9/32", "dev", "lo"], check=True)
        added = True
        assert len(delivered(sandbox, "bob@example.org", tok, timeout=20)) == 1
        assert time.monotonic() - t0 < 15  # far sooner than the backoff
    finally:
        if added:
            subprocess.run(["ip", "addr", "del", "127.0.0.9/32", "dev", "lo"])
        fwd.close()
        rc = d.stop()
        bus.close()
    assert rc == 0


def sent_copies(sb, user, tok, timeout=30.0, expect=True):
    """(flags, raw) of the messages in user's Sent folder whose Subject holds tok (waits for them)."""
    ctx = ssl.create_default_context(cafile=sb.ca_file)
    deadline = time.monotonic() + timeout
    while True:
        with imaplib.IMAP4_SSL(sb.host, sb.ports["imaps"], ssl_context=ctx) as m:
            m.login(user, sb.users[user])
            m.select("Sent", readonly=True)
            _, data = m.search(None, "SUBJECT", tok)
            found = []
            for i in data[0].split():
                _, parts = m.fetch(i, "(FLAGS BODY.PEEK[])")
                found.append((parts[0][0], parts[0][1]))
        if found or not expect or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def test_copy_filed_in_sent_on_the_server(sandbox, daemon):
    """IMAP account: once sent, the message is appended to the \\Sent folder, \\Seen, once, without Bcc."""
    tok = token()
    msg = ("From: alice@example.org\nTo: bob@example.org\nBcc: carol@example.org\nSubject: %s\n\nfor Sent\n"
           % tok).encode()
    r = sendmail(daemon, "-t", message=msg)
    assert r.returncode == 0, r.stderr
    assert len(delivered(sandbox, "bob@example.org", tok)) == 1
    copies = sent_copies(sandbox, "alice@example.org", tok)
    assert len(copies) == 1, copies
    flags, raw = copies[0]
    assert b"\\Seen" in flags, flags
    assert b"Bcc:" not in raw and tok.encode() in raw
    time.sleep(2)  # a later sync must not file it twice
    assert len(sent_copies(sandbox, "alice@example.org", tok, timeout=0)) == 1


def test_pop3_account_keeps_a_local_sent_copy(sandbox, tmp_path):
    cfg = write_config(str(tmp_path / "config.ini"), (
        "[store]\nkey = file\n\n"
        "[account home]\naddress = alice@example.org\npassword = %s\npop3 = pop3s://%s:%d\n"
        "smtp = smtps://%s:%d\nca_file = %s\n"
        % (sandbox.users["alice@example.org"], sandbox.host, sandbox.ports["pop3s"], sandbox.host,
           sandbox.ports["smtps"], sandbox.ca_file)))
    bus = Bus()
    d = Daemon(bus.env, cfg, str(tmp_path / "data"))
    d.bus = bus
    try:
        d.wait_for("running")
        tok = token()
        msg = ("From: alice@example.org\nTo: bob@example.org\nSubject: %s\n\nkept here\n" % tok).encode()
        assert sendmail(d, "-t", message=msg).returncode == 0
        assert len(delivered(sandbox, "bob@example.org", tok)) == 1
        d.wait_for("a copy is in the local Sent folder", timeout=20)
        r = subprocess.run([TEGAMI, "--json", "list", "home", "Sent"], env=bus.env, capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stderr
        msgs = json.loads(r.stdout)["messages"]
        assert len(msgs) == 1 and msgs[0]["subject"] == tok and "\\Seen" in msgs[0]["flags"], msgs
    finally:
        rc = d.stop()
        bus.close()
    assert rc == 0


def test_copy_filed_in_sent_through_smtps(sandbox, tmp_path):
    """The same through implicit TLS (465): delivered without Bcc, one \\Seen copy in Sent."""
    cfg = write_config(str(tmp_path / "config.ini"), (
        "[store]\nkey = file\n\n"
        "[account work]\naddress = alice@example.org\npassword = %s\nimap = imaps://%s:%d\n"
        "smtp = smtps://%s:%d\nca_file = %s\n"
        % (sandbox.users["alice@example.org"], sandbox.host, sandbox.ports["imaps"], sandbox.host,
           sandbox.ports["smtps"], sandbox.ca_file)))
    bus = Bus()
    d = Daemon(bus.env, cfg, str(tmp_path / "data"))
    d.bus = bus
    try:
        d.wait_for("running")
        tok = token()
        msg = ("From: alice@example.org\nTo: bob@example.org\nBcc: carol@example.org\nSubject: %s\n\n465\n"
               % tok).encode()
        assert sendmail(d, "-t", message=msg).returncode == 0
        got = delivered(sandbox, "bob@example.org", tok)
        assert len(got) == 1 and b"Bcc:" not in got[0]
        copies = sent_copies(sandbox, "alice@example.org", tok)
        assert len(copies) == 1 and b"\\Seen" in copies[0][0], copies
    finally:
        rc = d.stop()
        bus.close()
    assert rc == 0
