"""SMTP submission (issue 6) against the harness' real Postfix → LMTP → Dovecot.

Each case writes a config file, runs the smtp-send-tool test tool
(daemon/smtp/smtp-send-tool.c: prepare the message, one submission session,
or the durable outbox with --store) and reads what was delivered back over
IMAPS with the standard library. Exit codes of the tool: 0 sent, 1 sent but
some recipients refused, 2 permanent failure, 3 transient, 4 account error,
5 message refused by preparation.
"""
import imaplib
import os
import smtplib
import ssl
import subprocess
import time
import uuid

import pytest

TOOL = os.environ.get("SMTP_SEND_TOOL", "build/daemon/smtp/smtp-send-tool")
SENDER = "alice@example.org"
PORTS = {"smtps": "smtps", "smtp": "submission"}


def write_config(sb, tmp_path, scheme="smtps", password=None, name="work"):
    path = tmp_path / ("%s.ini" % name)
    path.write_text(
        "[account %s]\naddress = %s\npassword = %s\nimap = imaps://%s:%d\nsmtp = %s://%s:%d\nca_file = %s\n"
        % (name, SENDER, password or sb.users[SENDER], sb.host, sb.ports["imaps"], scheme, sb.host,
           sb.ports[PORTS[scheme]], sb.ca_file))
    path.chmod(0o600)
    return str(path)


class Result:
    def __init__(self, proc):
        self.rc, self.out, self.err = proc.returncode, proc.stdout, proc.stderr

    def __repr__(self):
        return "rc=%d\nstdout: %s\nstderr: %s" % (self.rc, self.out, self.err)


def send(sb, tmp_path, message, *args, scheme="smtps", password=None, timeout=60):
    cfg = write_config(sb, tmp_path, scheme, password)
    msg_file = tmp_path / ("msg-%s.eml" % uuid.uuid4().hex[:8])
    msg_file.write_bytes(message if isinstance(message, bytes) else message.encode())
    argv = [TOOL, "--config", cfg, "--account", "work", "--timeout", "20000"] + list(args) + [str(msg_file)]
    return Result(subprocess.run(argv, capture_output=True, text=True, timeout=timeout))


def imap(sb, user):
    ctx = ssl.create_default_context(cafile=sb.ca_file)
    m = imaplib.IMAP4_SSL(sb.host, sb.ports["imaps"], ssl_context=ctx)
    m.login(user, sb.users[user])
    return m


def fetch(sb, user, token, timeout=20.0, expect=True):
    """The raw messages in user's INBOX whose Subject holds token (waits for delivery)."""
    deadline = time.monotonic() + timeout
    while True:
        m = imap(sb, user)
        try:
            m.select("INBOX", readonly=True)
            typ, data = m.search(None, "SUBJECT", token)
            found = []
            for num in data[0].split():
                typ, parts = m.fetch(num, "(BODY.PEEK[])")
                found.append(parts[0][1])
        finally:
            m.logout()
        if found or not expect or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def message(subject, to="bob@example.org", extra="", body="hello\r\n", sender=SENDER):
    return "From: Alice <%s>\nTo: %s\n%sSubject: %s\n\n%s" % (sender, to, extra, subject, body)


def token():
    return "tok" + uuid.uuid4().hex[:12]


# ------------------------------------------------------------------ delivery
@pytest.mark.parametrize("scheme", ["smtps", "smtp"])
def test_sent_and_delivered_without_bcc(sandbox, tmp_path, scheme):
    tok = token()
    res = send(sandbox, tmp_path, message(tok, extra="Bcc: Carol <carol@example.org>\n"), scheme=scheme)
    assert res.rc == 0, res
    assert "RESULT sent 250" in res.out, res
    for user in ("bob@example.org", "carol@example.org"):
        got = fetch(sandbox, user, tok)
        assert len(got) == 1, (user, got)
        header = got[0].split(b"\r\n\r\n", 1)[0]
        assert b"\nbcc:" not in header.lower() and not header.lower().startswith(b"bcc:"), header
        assert b"carol@example.org" not in header, header
        assert b"\r\nDate: " in b"\r\n" + header and b"Message-ID: <" in header and b"@example.org>" in header


def test_data_path_dot_stuffing_and_8bit(sandbox, tmp_path):
    """DATA (no CHUNKING), one command at a time: dots survive, 8-bit goes with BODY=8BITMIME."""
    tok = token()
    body = ".\n..two\n.leading\nこんにちは\nend\n"
    res = send(sandbox, tmp_path, message(tok, body=body, extra="Content-Type: text/plain; charset=utf-8\n"),
               "--no-chunking", "--no-pipelining", scheme="smtp")
    assert res.rc == 0, res
    assert "8BITMIME" in res.out
    got = fetch(sandbox, "bob@example.org", tok)
    assert len(got) == 1
    assert got[0].split(b"\r\n\r\n", 1)[1] == body.replace("\n", "\r\n").encode()


def test_given_envelope_overrides_headers(sandbox, tmp_path):
    tok = token()
    res = send(sandbox, tmp_path, message(tok, to="nobody@example.org"), "-f", SENDER,
               "--rcpt", "carol@example.org", scheme="smtps")
    assert res.rc == 0, res
    assert len(fetch(sandbox, "carol@example.org", tok)) == 1


# ------------------------------------------------------------------ refusals
def test_rejected_recipient_fails_with_server_words(sandbox, tmp_path):
    res = send(sandbox, tmp_path, message(token(), to="nobody@example.org"))
    assert res.rc == 2, res
    assert "RESULT permanent 550" in res.out, res
    assert "account work" in res.err and "User unknown" in res.err, res


def test_some_recipients_refused(sandbox, tmp_path):
    tok = token()
    res = send(sandbox, tmp_path, message(tok, to="bob@example.org, nobody@example.org"))
    assert res.rc == 1, res
    assert "RCPT nobody@example.org 550" in res.out and "RCPT bob@example.org 250" in res.out, res
    assert len(fetch(sandbox, "bob@example.org", tok)) == 1


def test_wrong_password_names_the_account(sandbox, tmp_path):
    res = send(sandbox, tmp_path, message(token()), scheme="smtp", password="wrong")
    assert res.rc == 4, res
    assert "account work" in res.err and "authentication" in res.err and "535" in res.err, res


def test_prepare_refuses_long_line(sandbox, tmp_path):
    res = send(sandbox, tmp_path, message(token(), body="x" * 1200 + "\n"))
    assert res.rc == 5, res
    assert "more than 998" in res.err, res


def _ehlo_has(sb, ext):
    ctx = ssl.create_default_context(cafile=sb.ca_file)
    with smtplib.SMTP_SSL(sb.host, sb.ports["smtps"], context=ctx, timeout=10) as s:
        s.ehlo("test.example.org")
        return s.has_extn(ext)


def _postfix_smtputf8(sb, value):
    subprocess.run(["postconf", "-c", sb.postfix_dir, "smtputf8_enable=%s" % value], check=True)
    subprocess.run(["postfix", "-c", sb.postfix_dir, "reload"], check=True, capture_output=True)
    deadline = time.monotonic() + 20
    while _ehlo_has(sb, "smtputf8") != (value == "yes"):
        assert time.monotonic() < deadline, "postfix did not reload"
        time.sleep(0.2)


def test_smtputf8_needed_but_not_offered(sandbox, tmp_path):
    tok = token()
    _postfix_smtputf8(sandbox, "no")
    try:
        start = os.path.getsize(sandbox.postfix_log)
        res = send(sandbox, tmp_path, message(tok, to="太郎@example.org"), "--rcpt", "bob@example.org")
        time.sleep(0.5)  # let smtpd log the disconnect
        with open(sandbox.postfix_log, "rb") as f:
            f.seek(start)
            log = f.read().decode(errors="replace")
    finally:
        _postfix_smtputf8(sandbox, "yes")
    assert res.rc == 2, res
    assert "SMTPUTF8" in res.err and "nothing sent" in res.err and "account work" in res.err, res
    # The session ended before MAIL FROM: smtpd's summary line counts no mail command.
    sessions = [l for l in log.splitlines() if "postfix/smtps/smtpd" in l and "disconnect from" in l]
    assert sessions and "ehlo=1" in sessions[-1] and "mail=" not in sessions[-1], log
    assert fetch(sandbox, "bob@example.org", tok, timeout=1, expect=False) == []


# ------------------------------------------------------------------ the outbox
def outbox(sb, tmp_path, msg=None, *args, scheme="smtps", port=None, timeout=90):
    """Runs the tool on the store in tmp_path: queue msg (or --resume) and send what is due."""
    cfg = write_config(sb, tmp_path, scheme)
    if port is not None:  # the same account, pointing somewhere else
        text = open(cfg).read().replace(":%d\nca_file" % sb.ports[PORTS[scheme]], ":%d\nca_file" % port)
        open(cfg, "w").write(text)
    argv = [TOOL, "--config", cfg, "--account", "work", "--timeout", "20000", "--store", str(tmp_path / "outbox.db")]
    if msg is None:
        argv += ["--resume"] + list(args)
    else:
        msg_file = tmp_path / ("msg-%s.eml" % uuid.uuid4().hex[:8])
        msg_file.write_text(msg)
        argv += list(args) + [str(msg_file)]
    return Result(subprocess.run(argv, capture_output=True, text=True, timeout=timeout))


def items(res):
    """{id: (state, attempts, rcpts, last_reply)} from the tool's ITEM lines."""
    out = {}
    for line in res.out.splitlines():
        if line.startswith("ITEM "):
            _, ident, state, attempts, rcpts, *reply = line.split(" ", 5)
            out[int(ident)] = (state, int(attempts), rcpts, reply[0] if reply else "")
    return out


def test_outbox_sent_and_failed(sandbox, tmp_path):
    tok = token()
    res = outbox(sandbox, tmp_path, message(tok))
    assert res.rc == 0, res
    assert "QUEUED 1" in res.out and "EVENT 1 sent" in res.out, res
    assert len(fetch(sandbox, "bob@example.org", tok)) == 1
    res = outbox(sandbox, tmp_path, message(token(), to="nobody@example.org"), scheme="smtp")
    assert res.rc == 2, res
    state, attempts, rcpts, reply = items(res)[2]
    assert state == "failed" and attempts == 1 and rcpts == "nobody@example.org", res
    assert "550 5.1.1" in reply and "User unknown" in reply and "account work" in reply, res
    assert items(res)[1][0] == "sent"


def _free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_outbox_offline_then_back(sandbox, tmp_path):
    """The server is unreachable: the message stays queued; when it is back (kick) it goes out once."""
    tok = token()
    res = outbox(sandbox, tmp_path, message(tok), port=_free_port())
    assert res.rc == 3, res
    state, attempts, _, reply = items(res)[1]
    assert state == "queued" and attempts == 1 and "refused" in reply.lower(), res
    res = outbox(sandbox, tmp_path)  # not due yet: nothing happens
    assert items(res)[1][0] == "queued", res
    res = outbox(sandbox, tmp_path, None, "--kick")
    assert res.rc == 0 and items(res)[1][:2] == ("sent", 2), res
    assert len(fetch(sandbox, "bob@example.org", tok)) == 1
    res = outbox(sandbox, tmp_path, None, "--kick")  # nothing sent twice
    assert items(res)[1][:2] == ("sent", 2), res
    time.sleep(1)
    assert len(fetch(sandbox, "bob@example.org", tok)) == 1


def _postfix_defer(sb, addresses):
    """Postfix answers 450 to RCPT TO for these addresses (an access map), until called with []."""
    path = os.path.join(sb.postfix_dir, "defer")
    with open(path, "w") as f:
        f.writelines("%s 450 4.2.0 try again later\n" % a for a in addresses)
    past = time.time() - 60  # Postfix skips files changed in the last seconds
    os.utime(path, (past, past))
    subprocess.run(["postconf", "-c", sb.postfix_dir, "smtpd_recipient_restrictions="
                    "check_recipient_access texthash:%s, permit_sasl_authenticated, reject" % path], check=True)
    subprocess.run(["postfix", "-c", sb.postfix_dir, "reload"], check=True, capture_output=True)
    time.sleep(2)  # new smtpd processes read the map


def test_outbox_deferred_by_postfix_then_delivered_once(sandbox, tmp_path):
    tok = token()
    _postfix_defer(sandbox, ["bob@example.org"])
    try:
        res = outbox(sandbox, tmp_path, message(tok, to="bob@example.org, carol@example.org"))
    finally:
        _postfix_defer(sandbox, [])
    # carol got it; bob was deferred and queued again as a new item with the same body.
    assert res.rc == 0, res
    its = items(res)
    assert its[1][0] == "sent" and "450 4.2.0" in its[1][3], res
    assert its[2][0] == "queued" and its[2][2] == "bob@example.org", res
    assert len(fetch(sandbox, "carol@example.org", tok)) == 1
    res = outbox(sandbox, tmp_path, None, "--kick")
    assert items(res)[2][0] == "sent", res
    assert len(fetch(sandbox, "bob@example.org", tok)) == 1
    time.sleep(1)
    assert len(fetch(sandbox, "carol@example.org", tok)) == 1


def test_outbox_kill_while_sending(sandbox, tmp_path):
    """kill -9 at random moments: afterwards every message is delivered at most once, every
    queued one is sent once or marked unknown, and a resumed outbox never sends twice."""
    import random
    import signal
    cfg = write_config(sandbox, tmp_path, "smtps")
    store = str(tmp_path / "outbox.db")
    known = {}  # item id -> token
    tokens = []
    for i in range(int(os.environ.get("TEGAMI_SMTP_KILL_ROUNDS", "50"))):
        tok = token()
        tokens.append(tok)
        msg_file = tmp_path / ("kill-%d.eml" % i)
        msg_file.write_text(message(tok))
        proc = subprocess.Popen([TOOL, "--config", cfg, "--account", "work", "--store", store, str(msg_file)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(random.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        for line in out.splitlines():
            if line.startswith("QUEUED "):
                known[int(line.split()[1])] = tok
    res = Result(subprocess.run([TOOL, "--config", cfg, "--account", "work", "--store", store, "--resume", "--kick"],
                                capture_output=True, text=True, timeout=120))
    its = items(res)
    time.sleep(2)
    delivered = {tok: len(fetch(sandbox, "bob@example.org", tok, timeout=0, expect=False)) for tok in tokens}
    print("kill test: states %s, delivered %s" % (sorted(st for st, _, _, _ in its.values()),
                                                  sorted(delivered.values())))
    assert all(n <= 1 for n in delivered.values()), delivered
    for ident, (state, _, _, _) in its.items():
        assert state in ("sent", "unknown"), res
        if ident in known:
            if state == "sent":
                assert delivered[known[ident]] == 1, (ident, res)
    # Messages delivered are accounted for as sent or unknown, never silently twice.
    for ident, tok in known.items():
        if delivered[tok]:
            assert its[ident][0] in ("sent", "unknown"), res


def test_outbox_wrong_password_holds_the_account(sandbox, tmp_path):
    """An authentication failure stops the account: its other messages stay queued untried; a kick after the
    password is fixed sends them all, once."""
    tok1, tok2 = token(), token()
    cfg_bad = write_config(sandbox, tmp_path, "smtp", password="wrong")
    store = str(tmp_path / "outbox.db")

    def run(cfg, *args):
        return Result(subprocess.run([TOOL, "--config", cfg, "--account", "work", "--store", store] + list(args),
                                     capture_output=True, text=True, timeout=90))

    for tok in (tok1, tok2):
        (tmp_path / tok).write_text(message(tok))
    res = run(cfg_bad, str(tmp_path / tok1))
    assert res.rc == 3 and items(res)[1][:2] == ("queued", 1), res
    assert "account work" in res.err and "authentication" in res.err and "sending stopped" in res.err, res
    res = run(cfg_bad, "--kick", str(tmp_path / tok2))  # item 1 due again: fails, item 2 is not tried
    its = items(res)
    assert its[1][:2] == ("queued", 2) and its[2][:2] == ("queued", 0), res
    res = run(write_config(sandbox, tmp_path, "smtp"), "--resume", "--kick")
    its = items(res)
    assert its[1][:2] == ("sent", 3) and its[2][:2] == ("sent", 1), res
    for tok in (tok1, tok2):
        assert len(fetch(sandbox, "bob@example.org", tok)) == 1
