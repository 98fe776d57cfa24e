#!/usr/bin/python3
"""The README demo, driven from Python: sandbox servers, sample mail, tegamid on
a private session bus, and the tegami CLI showing what the daemon knows.

Usage: demo.py BUILD_DIR   (tests/demo builds first and calls this)
"""
import email.header
import email.message
import imaplib
import json
import os
import smtplib
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from harness import Sandbox  # noqa: E402

SAMPLES = [
    ("bob@example.org", "alice@example.org", "Lunch on Friday?", "Shall we try the new ramen place?\n"),
    ("carol@example.org", "alice@example.org", "お見積もりの件（再送）", "お世話になっております。\n見積書を再送いたします。\n"),
    ("alice@example.org", "bob@example.org", "Re: the quarterly report", "Numbers attached; see section 3.\n"),
]


def step(text):
    print("\n\033[1m== %s\033[0m" % text, flush=True)


def message(frm, to, subject, body):
    m = email.message.EmailMessage()
    m["From"], m["To"] = frm, to
    m["Subject"] = subject
    m["Date"] = email.utils.formatdate(localtime=False)
    m["Message-ID"] = email.utils.make_msgid(domain="example.org")
    m.set_content(body)
    return m


def wait_for_name(env, name, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run(["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
                            "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", "string:" + name],
                           env=env, capture_output=True, text=True)
        if "boolean true" in r.stdout:
            return True
        time.sleep(0.1)
    return False


def wait_for_messages(tegami, env, account, folder, count, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run([tegami, "--json", "list", account, folder], env=env, capture_output=True, text=True)
        if r.returncode == 0:
            try:
                if len(json.loads(r.stdout).get("messages", [])) >= count:
                    return True
            except ValueError:
                pass
        time.sleep(0.3)
    return False


def show_notifications(env):
    """What the notification server was asked to show (python-dbusmock keeps every call)."""
    import dbus
    conn = dbus.bus.BusConnection(env["DBUS_SESSION_BUS_ADDRESS"])
    mock = conn.get_object("org.freedesktop.Notifications", "/org/freedesktop/Notifications")
    calls = [a for _, method, a in mock.GetCalls(dbus_interface="org.freedesktop.DBus.Mock") if method == "Notify"]
    if not calls:
        print("  (none)")
    for a in calls:
        print("  \u250c %s" % a[3])
        for line in str(a[4]).splitlines():
            print("  \u2502 %s" % line)
    conn.close()


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build-demo")
    tegamid, tegami = os.path.join(build, "daemon/tegamid"), os.path.join(build, "clients/tegami")
    work = tempfile.mkdtemp(prefix="tegami-demo-")
    os.chmod(work, 0o755)

    step("Starting the sandbox: Dovecot (IMAP, POP3, LMTP) and Postfix (submission) on loopback")
    sb = Sandbox(os.path.join(work, "sandbox")).start()
    bus = None
    daemon = None
    helpers = []
    try:
        print("started in %.2f s; ports: %s" % (sb.start_seconds, ", ".join(
            "%s %d" % kv for kv in sorted(sb.ports.items()))))

        step("Sending sample mail through Postfix (port 587, STARTTLS required, AUTH, verified certificate)")
        ctx = ssl.create_default_context(cafile=sb.ca_file)
        for frm, to, subject, body in SAMPLES:
            with smtplib.SMTP(sb.host, sb.ports["submission"], timeout=20) as s:
                s.starttls(context=ctx)
                s.login(frm, sb.users[frm])
                s.send_message(message(frm, to, subject, body))
            print("  %s -> %s: %s" % (frm, to, subject))

        step("Mail as the server holds it (IMAP, alice's INBOX)")
        deadline = time.monotonic() + 20
        while True:
            with imaplib.IMAP4_SSL(sb.host, sb.ports["imaps"], ssl_context=ctx) as c:
                c.login("alice@example.org", sb.users["alice@example.org"])
                c.select("INBOX", readonly=True)
                _, data = c.search(None, "ALL")
                ids = data[0].split()
                if len(ids) >= 2 or time.monotonic() > deadline:
                    for i in ids:
                        _, d = c.fetch(i, "(BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)])")
                        hdr = email.message_from_bytes(d[0][1])
                        subj = str(email.header.make_header(email.header.decode_header(hdr["Subject"])))
                        print("  %-22s %s" % (hdr["From"], subj))
                    break
            time.sleep(0.3)

        step("Starting tegamid on a private D-Bus session bus")
        cfg = os.path.join(work, "config.ini")
        with open(cfg, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write("[store]\nkey = file\n\n"
                    "[account work]\naddress = alice@example.org\npassword = %s\n"
                    "imap = imaps://%s:%d\nsmtp = smtp://%s:%d\nca_file = %s\n\n"
                    "[account home]\naddress = bob@example.org\npassword = %s\n"
                    "pop3 = pop3s://%s:%d\nca_file = %s\npop3_leave_on_server = yes\n"
                    % (sb.users["alice@example.org"], sb.host, sb.ports["imaps"], sb.host,
                       sb.ports["submission"], sb.ca_file, sb.users["bob@example.org"], sb.host,
                       sb.ports["pop3s"], sb.ca_file))
        bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address"],
                               stdout=subprocess.PIPE, text=True)
        address = bus.stdout.readline().strip()
        env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=address)
        # The desktop's notification server: python-dbusmock's stand-in records what it is asked to show.
        mock = subprocess.Popen(["/usr/bin/python3", "-m", "dbusmock", "--template", "notification_daemon"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        helpers.append(mock)
        wait_for_name(env, "org.freedesktop.Notifications")
        helpers.append(subprocess.Popen([os.path.join(build, "clients/tegami-notify"), "--config", cfg], env=env))
        time.sleep(0.3)
        daemon = subprocess.Popen([tegamid, "--config", cfg, "--data-dir", os.path.join(work, "data")],
                                  env=env)
        for _ in range(100):
            if subprocess.run([tegami, "status"], env=env, capture_output=True).returncode == 0:
                break
            time.sleep(0.1)

        step("tegami accounts")
        subprocess.run([tegami, "accounts"], env=env, check=True)

        step("tegamid syncs work (IMAP) and fetches home (POP3) into its encrypted store")
        for account, folder in (("work", "INBOX"), ("home", "INBOX")):
            if not wait_for_messages(tegami, env, account, folder, 1):
                print("  %s/%s: nothing yet after 30 s: see the tegamid log above" % (account, folder))
        step("tegami status")
        subprocess.run([tegami, "status"], env=env, check=True)
        step("tegami folders work")
        subprocess.run([tegami, "folders", "work"], env=env)
        step("tegami list work INBOX")
        subprocess.run([tegami, "list", "work", "INBOX"], env=env)
        step("tegami list home INBOX")
        subprocess.run([tegami, "list", "home", "INBOX"], env=env)

        step("Sending through tegamid's durable outbox: tegami-sendmail -t (Bcc stays private)")
        sendmail = os.path.join(build, "clients/tegami-sendmail")
        tok = "%08x" % int(time.time() * 1000 % 0xffffffff)
        msg = ("From: Alice <alice@example.org>\nTo: bob@example.org\nBcc: carol@example.org\n"
               "Subject: 議事録 (minutes) %s\n\nSent with tegami-sendmail.\n" % tok)
        subprocess.run([sendmail, "-t"], input=msg.encode(), env=env, check=True)
        print("  queued durably; tegamid delivers it in the background")
        deadline = time.monotonic() + 30
        while True:
            with imaplib.IMAP4_SSL(sb.host, sb.ports["imaps"], ssl_context=ctx) as c:
                c.login("bob@example.org", sb.users["bob@example.org"])
                c.select("INBOX", readonly=True)
                _, data = c.search(None, "SUBJECT", tok)
                if data[0].split() or time.monotonic() > deadline:
                    for i in data[0].split():
                        _, d = c.fetch(i, "(BODY.PEEK[HEADER.FIELDS (FROM TO BCC SUBJECT)])")
                        print("  arrived in bob's INBOX:")
                        for line in d[0][1].decode(errors="replace").strip().splitlines():
                            print("    " + line)
                    if not data[0].split():
                        print("  not delivered within 30 s: see the tegamid log above")
                    break
            time.sleep(0.3)
        step("Desktop notifications tegami-notify asked for (one per burst of new mail)")
        time.sleep(2)
        show_notifications(env)
        print("\nThe demo's servers, config and data are in %s" % work)
    finally:
        for h in helpers:
            h.terminate()
            h.wait(timeout=10)
        if daemon:
            daemon.terminate()
            daemon.wait(timeout=10)
        if bus:
            bus.terminate()
            bus.wait(timeout=10)
        sb.stop(keep=True)


if __name__ == "__main__":
    main()
