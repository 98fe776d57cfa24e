"""tegami-notify (issue 8) against a real tegamid fetching from the harness' Dovecot,
on a private session bus where python-dbusmock's notification_daemon template
stands in for the desktop's notification server (the one stand-in allowed).

The daemon fetches a POP3 account at start; its NewMail signal reaches
tegami-notify, which asks the daemon for the summaries (GetMessageSummary) and calls
Notify. The mock records every call; the tests read them back with
org.freedesktop.DBus.Mock.GetCalls.
"""
import json
import os
import subprocess
import time

import dbus
import pytest

from tegami_bus import Bus, Daemon, write_config

NOTIFY = os.environ.get("TEGAMI_NOTIFY", "build/clients/tegami-notify")
USER = "alice@example.org"
MOCK_PATH = "/org/freedesktop/Notifications"


def message(subject, sender="Tester <tester@example.net>", size=0):
    body = "x" * size if size else "hello\n"
    return ("From: %s\nTo: <%s>\nSubject: %s\nMessage-ID: <%s@example.net>\n\n%s"
            % (sender, USER, subject, os.urandom(8).hex(), body)).encode()


class Mock:
    """python-dbusmock's notification daemon on the bus, with its recorded calls."""

    def __init__(self, bus, caps=None):
        args = ["/usr/bin/python3", "-m", "dbusmock", "--template", "notification_daemon"]
        if caps is not None:
            args += ["-p", json.dumps({"capabilities": " ".join(caps)})]
        self.proc = subprocess.Popen(args, env=bus.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.conn = bus.connect()
        deadline = time.monotonic() + 15
        while not self.conn.name_has_owner("org.freedesktop.Notifications"):
            assert time.monotonic() < deadline, "the notification mock did not start"
            time.sleep(0.1)
        self.obj = self.conn.get_object("org.freedesktop.Notifications", MOCK_PATH)

    def notifies(self):
        """[(replaces_id, summary, body, actions, hints)] of every Notify so far."""
        calls = self.obj.GetCalls(dbus_interface="org.freedesktop.DBus.Mock")
        return [(int(a[1]), str(a[3]), str(a[4]), [str(x) for x in a[5]], a[6])
                for _, method, a in calls if method == "Notify"]

    def wait(self, count, timeout=30):
        deadline = time.monotonic() + timeout
        while len(self.notifies()) < count:
            assert time.monotonic() < deadline, "expected %d Notify calls, got %r" % (count, self.notifies())
            time.sleep(0.1)
        return self.notifies()

    def emit(self, name, signature, args):
        self.obj.EmitSignal("org.freedesktop.Notifications", name, signature, args,
                            dbus_interface="org.freedesktop.DBus.Mock")

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=5)


class Setup:
    def __init__(self, sb, tmp_path, caps=None, extra="", notify_section="", proto="pop3"):
        self.bus = Bus()
        self.mock = Mock(self.bus, caps)
        self.cfg = write_config(str(tmp_path / "config.ini"), (
            "[store]\nkey = file\n\n%s"
            "[account home]\naddress = %s\npassword = %s\n%s = %ss://%s:%d\nca_file = %s\n"
            "poll_interval = 10\n%s"
            % (notify_section, USER, sb.users[USER], proto, proto, sb.host, sb.ports[proto + "s"], sb.ca_file,
               extra)))
        self.notify = subprocess.Popen([NOTIFY, "--config", self.cfg, "--log-level", "debug"], env=self.bus.env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # tegami-notify subscribes before tegamid starts, so the first burst is seen.
        time.sleep(0.5)
        self.daemon = Daemon(self.bus.env, self.cfg, str(tmp_path / "data"))

    def close(self):
        rc = self.daemon.stop()
        self.notify.terminate()
        self.notify.wait(timeout=5)
        self.mock.close()
        self.bus.close()
        assert rc == 0


@pytest.fixture
def inbox(sandbox):
    sandbox.doveadm("expunge", "-u", USER, "mailbox", "INBOX", "all")
    return sandbox


def test_one_notification_per_burst_decoded_and_escaped(inbox, tmp_path):
    inbox.deliver(USER, message("=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?="))  # テスト
    inbox.deliver(USER, message("<b>Deal</b> & more", sender="=?UTF-8?B?5bGx55SwIOWkqumDjg==?= <taro@example.jp>"))
    inbox.deliver(USER, message("plain subject"))
    s = Setup(inbox, tmp_path)
    try:
        calls = s.mock.wait(1)
        time.sleep(3)  # a second Notify for the same burst would come within the settle time
        calls = s.mock.notifies()
        assert len(calls) == 1, calls
        replaces, summary, body, actions, hints = calls[0]
        assert replaces == 0
        assert summary == "3 new messages in home", calls
        assert "テスト" in body, body
        assert "山田 太郎" in body, body
        assert "&lt;b&gt;Deal&lt;/b&gt; &amp; more" in body and "<b>" not in body, body
        assert hints["category"] == "email.arrived"
        assert actions == []  # no open_command configured

        # More mail while the notification is on screen updates it in place with the running count.
        inbox.deliver(USER, message("a fourth one"))
        calls = s.mock.wait(2, timeout=30)  # the next poll (10 s +-10%) fetches it
        replaces, summary, body, _, _ = calls[1]
        assert replaces == 1 and summary == "4 new messages in home", calls
        assert "a fourth one" in body
    finally:
        s.close()


def test_no_markup_server_gets_plain_text(inbox, tmp_path):
    inbox.deliver(USER, message("<i>x</i> & y"))
    s = Setup(inbox, tmp_path, caps=["body"])
    try:
        calls = s.mock.wait(1)
        _, summary, body, _, _ = calls[0]
        assert summary == "Tester" and body == "<i>x</i> & y", calls
    finally:
        s.close()


def test_no_preview_shows_no_content(inbox, tmp_path):
    inbox.deliver(USER, message("secret plans", sender="Boss <boss@example.net>"))
    inbox.deliver(USER, message("more secret plans"))
    s = Setup(inbox, tmp_path, extra="notify_preview = no\n")
    try:
        calls = s.mock.wait(1)
        _, summary, body, _, _ = calls[0]
        assert summary == "2 new messages in home" and body == "", calls
        assert not any("secret" in str(c) or "Boss" in str(c) for c in calls)
    finally:
        s.close()


def test_default_action_runs_open_command(inbox, tmp_path):
    inbox.deliver(USER, message("click me"))
    out = tmp_path / "opened.txt"
    s = Setup(inbox, tmp_path, caps=["body", "actions"],
              notify_section="[notify]\nopen_command = env > %s\n\n" % out)
    try:
        calls = s.mock.wait(1)
        assert calls[0][3] == ["default", "Open"], calls
        s.mock.emit("ActionInvoked", "us", [dbus.UInt32(1), "default"])
        deadline = time.monotonic() + 10
        while not (out.exists() and "TEGAMI_MESSAGE_IDS" in out.read_text()):
            assert time.monotonic() < deadline, "open_command did not run"
            time.sleep(0.1)
        env = dict(l.split("=", 1) for l in out.read_text().splitlines() if "=" in l)
        assert env["TEGAMI_ACCOUNT"] == "home"
        assert env["TEGAMI_MESSAGE_IDS"].strip().isdigit(), env
        assert not any("click me" in v for v in env.values())
    finally:
        s.close()


def test_auth_failure_and_quota_notifications(inbox, tmp_path):
    # Quota: the server holds more than pop3_server_warn_mb.
    for i in range(2):
        inbox.deliver(USER, message("big %d" % i, size=700 * 1024))
    s = Setup(inbox, tmp_path, extra="pop3_server_warn_mb = 1\n")
    try:
        calls = s.mock.wait(2)
        summaries = [c[1] for c in calls]
        assert "Mailbox home is almost full" in summaries, calls
        assert "2 new messages in home" in summaries, calls
    finally:
        s.close()

    s = Setup(inbox, tmp_path, extra="")
    s.daemon.stop()
    s.cfg = write_config(s.cfg, open(s.cfg).read().replace("password = %s" % inbox.users[USER],
                                                             "password = wrong"))
    s.daemon = Daemon(s.bus.env, s.cfg, str(tmp_path / "data2"))
    try:
        calls = s.mock.wait(1)
        time.sleep(2)
        calls = s.mock.notifies()
        assert len(calls) == 1, calls  # one notice, not one per retry
        _, summary, body, _, _ = calls[0]
        assert summary == "home: the server refused the login", calls
        assert "authentication failed" in body and "wrong" not in body, calls
    finally:
        s.close()


def test_imap_account_new_mail(inbox, tmp_path):
    """The daemon's scheduler syncs an IMAP account; its new mail makes one notification, and
    mail arriving later (next poll) updates it."""
    for i in range(2):
        inbox.deliver(USER, message("imap %d" % i))
    s = Setup(inbox, tmp_path, proto="imap")
    try:
        calls = s.mock.wait(1)
        assert calls[0][1] == "2 new messages in home" and "imap 0" in calls[0][2] and "imap 1" in calls[0][2], calls
        watch = subprocess.Popen([os.environ.get("TEGAMI", "build/clients/tegami"), "--json", "watch"], env=s.bus.env,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(0.5)  # its match rule is in place
        inbox.deliver(USER, message("imap later"))
        calls = s.mock.wait(2, timeout=30)
        # The sync that fetched it reported its progress: INBOX from 0 to 1 of 1 new message.
        progress = []
        while True:
            ev = json.loads(watch.stdout.readline())
            if ev["signal"] == "SyncStarted":
                progress = []  # a poll that found nothing may come first
            if ev["signal"] == "SyncProgress" and ev["args"][1] == "INBOX":
                progress.append(tuple(ev["args"][2:]))
            if ev["signal"] == "SyncFinished" and any(p[1] > 0 for p in progress):
                break
        watch.terminate()
        watch.wait(timeout=5)
        assert progress[0] == (0, 1) and progress[-1] == (1, 1), progress
        assert calls[1][0] == 1 and calls[1][1] == "3 new messages in home" and "imap later" in calls[1][2], calls
        r = subprocess.run([os.environ.get("TEGAMI", "build/clients/tegami"), "--json", "status"], env=s.bus.env,
                           capture_output=True, text=True, timeout=30)
        acct = json.loads(r.stdout)["accounts"][0]
        assert acct["state"] in ("idle", "syncing") and acct["last_sync"] > 0, acct
    finally:
        s.close()
