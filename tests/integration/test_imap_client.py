"""The IMAP client state machine (daemon/imap/client.c) against the harness' real Dovecot.

Each case writes a config file and runs imap-client-tool (daemon/imap/imap-client-tool.c):
it logs in with one account, prints "auth MECH", "caps ...", "enabled ...", runs the
commands given with --cmd / --append pipelined, and prints per command the untagged
events it got, "body N seq=S size=B sha256=HEX" for every streamed FETCH body and
"done N OK|NO|BAD|ERR ...". Bodies are compared with the server's Maildir files in
wire form (CRLF), appended messages are read back with Python's imaplib.

Faults go through ImapProxy, a plain-text TCP proxy on loopback (the account uses
`tls = none`, allowed for loopback only, or a plain imap:// URL whose STARTTLS the proxy
hides): it rewrites server bytes (hiding STARTTLS or LITERAL+), says BYE in place of a
chosen command, answers one with garbage, or cuts the connection after N server bytes.

Exit codes: 0 ok, 1 network/protocol, 2 certificate, 3 downgrade, 4 authentication,
5 credentials.
"""
import glob
import hashlib
import imaplib
import os
import re
import socket
import ssl
import subprocess
import threading

import pytest

TOOL = os.environ.get("IMAP_CLIENT_TOOL", "build/daemon/imap/imap-client-tool")
USER = "alice@example.org"


@pytest.fixture
def inbox(sandbox):
    """alice's INBOX, emptied before the test."""
    sandbox.doveadm("expunge", "-u", USER, "mailbox", "INBOX", "all")
    return sandbox


def message(i, size=2000, tag=""):
    body = ("line %d of an IMAP test message %s\n" % (i, tag)) * max(1, size // 36)
    return ("From: Tester <tester@example.net>\nTo: <%s>\nSubject: IMAP test %d %s\n"
            "Message-ID: <imap-%d-%s@example.net>\n\n%s"
            % (USER, i, tag, i, os.urandom(6).hex(), body)).encode()


def wire(data):
    """A message as IMAP serves it: CRLF line ends."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def maildir_hashes(sb):
    """SHA-256 of every Maildir file of alice's INBOX in wire form."""
    root = sb.maildir_path(USER)
    out = []
    for path in glob.glob(os.path.join(root, "new", "*")) + glob.glob(os.path.join(root, "cur", "*")):
        with open(path, "rb") as f:
            out.append(hashlib.sha256(wire(f.read())).hexdigest())
    return sorted(out)


def write_config(tmp_path, sb, scheme="imaps", name="home", port=None, **keys):
    port = port or sb.ports["imaps" if scheme == "imaps" else "imap"]
    k = {"address": USER, "password": sb.users[USER], "ca_file": sb.ca_file,
         "imap": "%s://%s:%d" % (scheme, sb.host, port)}
    k.update(keys)
    k = {a: b for a, b in k.items() if b is not None}  # None drops a key (password=None for OAuth)
    path = tmp_path / ("%s.ini" % name)
    path.write_text("[account %s]\n%s" % (name, "".join("%s = %s\n" % kv for kv in k.items())))
    path.chmod(0o600)
    return str(path)


class Run:
    """The tool's outcome, its output parsed."""

    def __init__(self, proc):
        self.rc, self.out, self.err = proc.returncode, proc.stdout, proc.stderr
        self.auth, self.caps, self.enabled = None, [], []
        self.bodies, self.done, self.events, self.appenduid = {}, {}, {}, {}
        for line in self.out.splitlines():
            word, _, rest = line.partition(" ")
            if word == "auth":
                self.auth = rest
            elif word == "caps":
                self.caps = rest.split()
            elif word == "enabled":
                self.enabled = rest.split()
            elif word == "body":
                n, seq, size, sha = rest.split()
                self.bodies.setdefault(int(n), []).append(
                    (int(seq.split("=")[1]), int(size.split("=")[1]), sha.split("=")[1]))
            elif word == "done":
                n, _, result = rest.partition(" ")
                self.done[int(n)] = result
            elif word == "event":
                n, _, ev = rest.partition(" ")
                self.events.setdefault(int(n), []).append(ev)
            elif word == "appenduid":
                n, validity, uid = rest.split()
                self.appenduid[int(n)] = (int(validity), int(uid))

    def __repr__(self):
        return "rc=%d\nstdout: %s\nstderr: %s" % (self.rc, self.out[-4000:], self.err[-4000:])


def tool(cfg, *args, name="home", timeout=120):
    argv = [TOOL, "--config", cfg, "--account", name] + [str(a) for a in args]
    # Sanitizer builds: the first UBSan report must fail the run, not just print.
    env = dict(os.environ, UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1")
    r = Run(subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env))
    # ASan also exits 1, like a network failure: look at what it says, too.
    assert "Sanitizer" not in r.err and "runtime error:" not in r.err, r
    return r


def imap_read_back(sb, uid, mailbox="INBOX"):
    """Message uid of mailbox, fetched with imaplib over imaps."""
    ctx = ssl.create_default_context(cafile=sb.ca_file)
    m = imaplib.IMAP4_SSL(sb.host, sb.ports["imaps"], ssl_context=ctx)
    try:
        m.login(USER, sb.users[USER])
        m.select(mailbox, readonly=True)
        typ, data = m.uid("FETCH", str(uid), "(BODY.PEEK[])")
        assert typ == "OK", data
        return data[0][1]
    finally:
        m.logout()


class ImapProxy:
    """A plain-text TCP proxy to one of Dovecot's ports, for one connection.
    replace: (old, new) pairs applied to server bytes; bye_on: the first client command
    with this name is not forwarded, the proxy sends "* BYE" and hangs up instead;
    garbage_on: likewise, but answers with a line that breaks the IMAP grammar;
    swallow_on: such a command is dropped (the server never hears of it, so never answers);
    cut_bytes: hang up after forwarding that many server bytes. `commands` records
    the client's command lines (tag and name, and the literal marker of APPEND), `words`
    their lengths in words."""

    def __init__(self, target_port, replace=(), bye_on=None, garbage_on=None, cut_bytes=None, swallow_on=None):
        self.target_port, self.replace, self.swallow_on = target_port, list(replace), swallow_on
        self.bye_on, self.garbage_on, self.cut_bytes = bye_on, garbage_on, cut_bytes
        self.commands, self.down_bytes, self.cut = [], 0, False
        self.words = []  # (command name, words in its line)
        self.lock = threading.Lock()
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4)
        self.port = self.lsock.getsockname()[1]
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
                m = re.match(rb"(A\d+) (\S+)", line)
                if m:
                    name = m.group(2).decode().upper()
                    lit = re.search(rb"\{\d+\+?\}$", line)
                    self.commands.append((m.group(1).decode(), name, lit.group(0).decode() if lit else None))
                    self.words.append((name, len(line.split())))
                    if name in (self.bye_on, self.garbage_on):
                        reply = (b"* BYE fault proxy says goodbye\r\n" if name == self.bye_on
                                 else b"* 1 FETCH (UID not-a-number)\r\n")
                        try:
                            client.sendall(reply)
                        except OSError:
                            pass
                        return self._kill()
                    if name == self.swallow_on:
                        continue  # never forwarded, never answered: a hung server
                try:
                    server.sendall(line + b"\r\n")
                except OSError:
                    return

    def _down(self, server, client):
        while not self.cut:
            try:
                data = server.recv(65536)
            except OSError:
                return
            if not data:
                return self._kill()
            for old, new in self.replace:
                data = data.replace(old, new)
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


def proxy_config(tmp_path, sb, proxy, tls="none"):
    return write_config(tmp_path, sb, "imap", port=proxy.port, tls=tls)


# ------------------------------------------------------------------ login
def test_imaps_login(inbox, tmp_path):
    r = tool(write_config(tmp_path, inbox), "--id", "--cmd", "NOOP")
    assert r.rc == 0, r
    # Dovecot offers SCRAM-SHA-256 (harness: auth_mechanisms); the strongest one is chosen.
    assert r.auth == "SCRAM-SHA-256", r
    assert "IMAP4REV1" in [c.upper() for c in r.caps] and "LITERAL+" in r.caps, r
    assert r.done == {1: "OK "}, r


def test_starttls_login(inbox, tmp_path):
    r = tool(write_config(tmp_path, inbox, "imap"), "--cmd", "NOOP")
    assert r.rc == 0, r
    assert r.auth == "SCRAM-SHA-256" and r.done[1].startswith("OK"), r
    # Capabilities were asked again over TLS: the post-login list has the full set.
    assert "STARTTLS" not in r.caps and "QRESYNC" in r.caps, r


def test_starttls_downgrade_refused(inbox, tmp_path):
    # The proxy hides STARTTLS (same length, so nothing else moves); the URL says it is required.
    proxy = ImapProxy(inbox.ports["imap"], replace=[(b" STARTTLS", b" XSTARTTL")])
    r = tool(proxy_config(tmp_path, inbox, proxy, tls=None), "--cmd", "NOOP")
    proxy.close()
    assert r.rc == 3, r
    assert "STARTTLS was not offered" in r.err and "account home" in r.err, r
    assert not any(name in ("LOGIN", "AUTHENTICATE") for _, name, _ in proxy.commands), proxy.commands


def test_authenticate_without_sasl_ir(inbox, tmp_path):
    # Without SASL-IR the initial response waits for the server's empty "+".
    proxy = ImapProxy(inbox.ports["imap"], replace=[(b"SASL-IR", b"XASL-IR")])
    r = tool(proxy_config(tmp_path, inbox, proxy), "--cmd", "NOOP")
    proxy.close()
    assert r.rc == 0 and r.auth == "SCRAM-SHA-256" and r.done[1].startswith("OK"), r
    assert ("AUTHENTICATE", 3) in proxy.words, proxy.words  # "A1 AUTHENTICATE SCRAM-SHA-256", nothing more


def test_login_when_no_sasl_offered(inbox, tmp_path):
    # No AUTH=... (renamed by the proxy): LOGIN, allowed here because `tls = none` is loopback.
    proxy = ImapProxy(inbox.ports["imap"], replace=[(b"AUTH=", b"XUTH=")])
    r = tool(proxy_config(tmp_path, inbox, proxy), "--cmd", "NOOP")
    proxy.close()
    assert r.rc == 0 and r.auth == "LOGIN" and r.done[1].startswith("OK"), r
    # The greeting's and LOGIN's [CAPABILITY] codes spare both CAPABILITY commands.
    assert [name for _, name, _ in proxy.commands] == ["LOGIN", "NOOP", "LOGOUT"], proxy.commands


def test_wrong_password(inbox, tmp_path):
    r = tool(write_config(tmp_path, inbox, password="not-the-password"))
    assert r.rc == 4, r
    assert "account home: %s:%d: authentication failed" % (inbox.host, inbox.ports["imaps"]) in r.err, r
    assert "not-the-password" not in r.err + r.out


def test_enable_qresync(inbox, tmp_path):
    r = tool(write_config(tmp_path, inbox), "--qresync", "--cmd", "SELECT INBOX")
    assert r.rc == 0, r
    assert "QRESYNC" in r.enabled and "CONDSTORE" in r.enabled, r
    assert any("HIGHESTMODSEQ" in e for e in r.events[1]), r
    r = tool(write_config(tmp_path, inbox), "--cmd", "NOOP")
    assert r.enabled == [], r


# ------------------------------------------------------------------ fetch
def test_pipelined_fetch(inbox, tmp_path):
    n = 25
    for i in range(n):
        inbox.deliver(USER, message(i, size=3000 + 500 * i))
    want = maildir_hashes(inbox)
    assert len(want) == n
    cmds = ["--cmd", "SELECT INBOX"]
    for i in range(1, n + 1):  # one FETCH per message, all in flight together
        cmds += ["--cmd", "FETCH %d (UID FLAGS BODY.PEEK[])" % i]
    r = tool(write_config(tmp_path, inbox), "--max-flight", 8, *cmds)
    assert r.rc == 0, r
    assert all(r.done[i].startswith("OK") for i in range(1, n + 2)), r
    got = sorted(sha for i in range(2, n + 2) for _, _, sha in r.bodies.get(i, []))
    assert got == want, r
    # The same with one UID FETCH of everything.
    r = tool(write_config(tmp_path, inbox), "--cmd", "SELECT INBOX", "--cmd", "UID FETCH 1:* (UID BODY.PEEK[])")
    assert r.rc == 0 and sorted(sha for _, _, sha in r.bodies[2]) == want, r


def test_big_message_streams(inbox, tmp_path):
    lines = "".join("%s\n" % os.urandom(38).hex() for _ in range(65000))  # ~5 MB
    msg = ("From: big@example.net\nSubject: big\n\n%s" % lines).encode()
    inbox.seed_maildir(USER, "INBOX", [msg])
    r = tool(write_config(tmp_path, inbox), "--cmd", "SELECT INBOX", "--cmd", "FETCH 1 (BODY.PEEK[])")
    assert r.rc == 0, r
    [(seq, size, sha)] = r.bodies[2]
    assert size == len(wire(msg)) > 5000000 and sha == hashlib.sha256(wire(msg)).hexdigest(), r


def test_idle_and_done(inbox, tmp_path):
    r = tool(write_config(tmp_path, inbox), "--cmd", "SELECT INBOX", "--cmd", "IDLE", "--cmd", "NOOP")
    assert r.rc == 0 and "idling 2" in r.out.splitlines(), r
    assert all(r.done[i].startswith("OK") for i in (1, 2, 3)), r
    # Idling longer than the read timeout: after "+" the server waits for us, so no timeout applies.
    r = tool(write_config(tmp_path, inbox), "--read-timeout", 400, "--idle-ms", 1500,
             "--cmd", "SELECT INBOX", "--cmd", "IDLE", "--cmd", "NOOP")
    assert r.rc == 0 and all(r.done[i].startswith("OK") for i in (1, 2, 3)), r


def test_literal_in_list(inbox, tmp_path):
    # A mailbox name with a double quote and a backslash: Dovecot sends it as a literal.
    name = 'odd "box\\ name'
    inbox.create_mailbox(USER, name)
    r = tool(write_config(tmp_path, inbox), "--cmd", 'LIST "" "*"')
    assert r.rc == 0, r
    assert any("odd" in e for e in r.events[1]), r


# ------------------------------------------------------------------ append
def big_file(tmp_path, size):
    lines = "".join("%s\n" % os.urandom(38).hex() for _ in range(size // 77 + 1))
    data = wire(("From: up@example.net\nSubject: upload %s\n\n%s" % (os.urandom(4).hex(), lines)).encode())
    path = tmp_path / "upload.eml"
    path.write_bytes(data)
    return str(path), data


def test_append_literal_plus(inbox, tmp_path):
    path, data = big_file(tmp_path, 3 * 1024 * 1024)
    proxy = ImapProxy(inbox.ports["imap"])
    r = tool(proxy_config(tmp_path, inbox, proxy), "--append", "INBOX", path)
    proxy.close()
    assert r.rc == 0 and r.done[1].startswith("OK [APPENDUID]"), r
    assert [lit for _, name, lit in proxy.commands if name == "APPEND"] == ["{%d+}" % len(data)], proxy.commands
    assert imap_read_back(inbox, r.appenduid[1][1]) == data


def test_append_synchronizing_literal(inbox, tmp_path):
    # Without LITERAL+ (renamed by the proxy) the client must wait for "+" before the body.
    path, data = big_file(tmp_path, 3 * 1024 * 1024)
    proxy = ImapProxy(inbox.ports["imap"], replace=[(b"LITERAL+", b"XLITERAL")])
    r = tool(proxy_config(tmp_path, inbox, proxy), "--append", "INBOX", path, "--cmd", "NOOP")
    proxy.close()
    assert r.rc == 0 and r.done[1].startswith("OK [APPENDUID]") and r.done[2].startswith("OK"), r
    assert "LITERAL+" not in r.caps, r
    assert [lit for _, name, lit in proxy.commands if name == "APPEND"] == ["{%d}" % len(data)], proxy.commands
    assert imap_read_back(inbox, r.appenduid[1][1]) == data


def test_append_refused(inbox, tmp_path):
    path, _ = big_file(tmp_path, 1000)
    proxy = ImapProxy(inbox.ports["imap"], replace=[(b"LITERAL+", b"XLITERAL")])
    r = tool(proxy_config(tmp_path, inbox, proxy), "--append", "No/Such/Box", path, "--cmd", "NOOP")
    proxy.close()
    # NO [TRYCREATE] before the continuation: the body is never sent, the session goes on.
    assert r.rc == 0 and r.done[1].startswith("NO [TRYCREATE]") and r.done[2].startswith("OK"), r


# ------------------------------------------------------------------ faults
def test_bye_mid_session(inbox, tmp_path):
    for i in range(3):
        inbox.deliver(USER, message(i))
    proxy = ImapProxy(inbox.ports["imap"], bye_on="FETCH")
    # Lockstep, so that SELECT is answered before the proxy sees FETCH.
    r = tool(proxy_config(tmp_path, inbox, proxy), "--max-flight", 1, "--cmd", "SELECT INBOX",
             "--cmd", "FETCH 1:* (BODY.PEEK[])", "--cmd", "NOOP")
    proxy.close()
    assert r.rc == 1, r
    assert r.done[1].startswith("OK") and r.done[2].startswith("ERR") and r.done[3].startswith("ERR"), r
    assert "BYE" in r.err and "account home" in r.err, r


def test_connection_cut_mid_fetch(inbox, tmp_path):
    lines = "".join("%s\n" % os.urandom(38).hex() for _ in range(30000))
    inbox.seed_maildir(USER, "INBOX", [("Subject: cut\n\n%s" % lines).encode()])
    proxy = ImapProxy(inbox.ports["imap"], cut_bytes=300000)
    r = tool(proxy_config(tmp_path, inbox, proxy), "--cmd", "SELECT INBOX", "--cmd", "FETCH 1 (BODY.PEEK[])",
             "--cmd", "NOOP")
    proxy.close()
    assert r.rc == 1, r
    assert r.done[2].startswith("ERR") and r.done[3].startswith("ERR") and 2 not in r.bodies, r
    assert "connection closed by the server" in r.err, r


def test_read_timeout(inbox, tmp_path):
    proxy = ImapProxy(inbox.ports["imap"], swallow_on="NOOP")
    r = tool(proxy_config(tmp_path, inbox, proxy), "--read-timeout", 500, "--cmd", "NOOP")
    proxy.close()
    assert r.rc == 1 and r.done[1].startswith("ERR"), r
    assert "no reply for 0.5 s" in r.err, r


def test_parser_error_fails_session(inbox, tmp_path):
    proxy = ImapProxy(inbox.ports["imap"], garbage_on="NOOP")
    r = tool(proxy_config(tmp_path, inbox, proxy), "--cmd", "NOOP")
    proxy.close()
    assert r.rc == 1 and r.done[1].startswith("ERR"), r
    assert re.search(r"bad response from the server: .* at byte \d+", r.err), r


# ------------------------------------------------------------------ OAuth 2
@pytest.fixture(scope="module")
def oauth_sandbox():
    """A sandbox whose Dovecot also checks OAuth 2 tokens at a local introspection endpoint."""
    import harness   # conftest.py put tests/harness on sys.path
    sb = harness.Sandbox(postfix=False, oauth2=True).start()
    yield sb
    sb.stop()


def token_command(tmp_path, token):
    path = tmp_path / "token"
    path.write_text(token + "\n")
    return "cat %s" % path


@pytest.mark.parametrize("scheme", ["imaps", "imap"])
def test_oauth2_token(oauth_sandbox, tmp_path, scheme):
    sb = oauth_sandbox
    token = sb.oauth2.issue(USER)
    cfg = write_config(tmp_path, sb, scheme, password=None, oauth2_token_command=token_command(tmp_path, token))
    r = tool(cfg, "--cmd", "NOOP")
    assert r.rc == 0 and r.auth == "OAUTHBEARER" and r.done[1].startswith("OK"), r
    assert token in sb.oauth2.requests and token not in r.out + r.err


def test_oauth2_revoked_token(oauth_sandbox, tmp_path):
    # The server's JSON error comes as a continuation; the client ends the exchange, then NO.
    sb = oauth_sandbox
    token = sb.oauth2.issue(USER)
    sb.oauth2.revoke(token)
    cfg = write_config(tmp_path, sb, password=None, oauth2_token_command=token_command(tmp_path, token))
    r = tool(cfg, "--cmd", "NOOP")
    assert r.rc == 4 and "authentication failed (OAUTHBEARER" in r.err, r
