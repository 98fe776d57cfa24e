"""daemon/net against the harness' real Dovecot and Postfix (issue 4).

Each case writes a config file, runs the net-probe test tool (daemon/net/
net-probe.c: connect, STARTTLS, CAPABILITY, one SASL exchange, logout) and
checks its exit code and messages. Exit codes: 0 ok, 1 network/protocol,
2 certificate, 3 downgrade, 4 authentication, 5 credentials.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

PROBE = os.environ.get("NET_PROBE", "build/daemon/net/net-probe")
USER = "alice@example.org"

SCHEMES = {  # scheme -> (protocol, sandbox port name)
    "imaps": ("imap", "imaps"), "imap": ("imap", "imap"),
    "pop3s": ("pop3", "pop3s"), "pop3": ("pop3", "pop3"),
    "smtps": ("smtp", "smtps"), "smtp": ("smtp", "submission"),
}


def account(sb, scheme="imaps", host=None, port=None, **keys):
    """Keys of one [account] section for the sandbox; keys=None drops a key."""
    proto, port_name = SCHEMES[scheme]
    acc = {"address": USER, "password": sb.users[USER],
           "ca_file": sb.ca_file}
    url = "%s://%s:%d" % (scheme, host or sb.host, port or sb.ports[port_name])
    if proto == "smtp":   # an account needs an incoming server too
        acc["imap"] = "imaps://%s:%d" % (sb.host, sb.ports["imaps"])
        acc["smtp"] = url
    else:
        acc[proto] = url
    for k, v in keys.items():
        if v is None:
            acc.pop(k, None)
        else:
            acc[k] = v
    return acc


def write_config(tmp_path, name, keys):
    path = tmp_path / ("%s.ini" % name)
    path.write_text("[account %s]\n%s" % (name, "".join("%s = %s\n" % kv for kv in keys.items())))
    path.chmod(0o600)
    return str(path)


class Result:
    def __init__(self, proc, seconds):
        self.rc, self.out, self.err, self.seconds = proc.returncode, proc.stdout, proc.stderr, seconds

    def __repr__(self):
        return "rc=%d\nstdout: %s\nstderr: %s" % (self.rc, self.out, self.err)


def probe(tmp_path, keys, *args, name="work", proto=None, env=None, wrapper=(), timeout=60):
    cfg = write_config(tmp_path, name, keys)
    if proto is None:
        proto = "smtp" if "smtp" in keys else "pop3" if "pop3" in keys else "imap"
    argv = list(wrapper) + [PROBE, "--config", cfg, "--account", name, "--proto", proto] + list(args)
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))
    return Result(proc, time.monotonic() - t0)


def fingerprint(cert_file):
    out = subprocess.run(["openssl", "x509", "-in", cert_file, "-noout", "-fingerprint", "-sha256"],
                         capture_output=True, text=True, check=True).stdout
    return out.strip().split("=", 1)[1]


# ------------------------------------------------------------------ TLS
@pytest.mark.parametrize("scheme", ["imaps", "pop3s", "smtps"])
def test_implicit_tls(sandbox, tmp_path, scheme):
    r = probe(tmp_path, account(sandbox, scheme))
    assert r.rc == 0, r
    assert r.out.startswith("OK %s://" % scheme) and " tls" in r.out, r


@pytest.mark.parametrize("scheme", ["imap", "pop3", "smtp"])
def test_starttls_and_scram(sandbox, tmp_path, scheme):
    r = probe(tmp_path, account(sandbox, scheme), "--auth")
    assert r.rc == 0, r
    assert " tls auth=SCRAM-SHA-256" in r.out, r


@pytest.mark.parametrize("scheme", ["imaps", "imap"])
def test_wrong_ca_refused(sandbox, tmp_path, scheme):
    r = probe(tmp_path, account(sandbox, scheme, ca_file=sandbox.other_ca_file), "--auth", "--retries", "3")
    assert r.rc == 2, r
    assert "account work: %s:%d: certificate of %s rejected: unable to get local issuer certificate" % (
        sandbox.host, sandbox.ports[SCHEMES[scheme][1]], sandbox.host) in r.err, r
    assert "authenticating" not in r.err and r.err.count("attempt ") == 1, r


def test_system_store_alone_refuses_the_sandbox_ca(sandbox, tmp_path):
    r = probe(tmp_path, account(sandbox, "imaps", ca_file=None))
    assert r.rc == 2 and "certificate of" in r.err, r


@pytest.mark.parametrize("scheme", ["imaps", "imap", "smtps"])
def test_wrong_host_refused(sandbox, tmp_path, scheme):
    # The servers listen on 127.0.0.2 too, but the certificate does not name it.
    r = probe(tmp_path, account(sandbox, scheme, host=sandbox.wrong_host), "--auth")
    assert r.rc == 2, r
    assert "account work: %s:%d: certificate of %s rejected: IP address mismatch" % (
        sandbox.wrong_host, sandbox.ports[SCHEMES[scheme][1]], sandbox.wrong_host) in r.err, r


def test_fingerprint_pin_match(sandbox, tmp_path):
    # A pin trusts exactly that certificate: no CA and a name it does not carry.
    keys = account(sandbox, "imaps", host=sandbox.wrong_host, ca_file=None,
                   tls_fingerprint=fingerprint(sandbox.cert_file))
    r = probe(tmp_path, keys, "--auth")
    assert r.rc == 0, r
    r = probe(tmp_path, dict(keys, imap="imap://%s:%d" % (sandbox.host, sandbox.ports["imap"])), "--auth")
    assert r.rc == 0, r


def test_fingerprint_pin_mismatch(sandbox, tmp_path):
    # Even with the right CA, a pin that does not match refuses the server.
    other = fingerprint(sandbox.other_ca_file)
    r = probe(tmp_path, account(sandbox, "imap", tls_fingerprint=other), "--auth")
    assert r.rc == 2, r
    real = fingerprint(sandbox.cert_file).replace(":", "").lower()
    assert "certificate of %s rejected: its SHA-256 fingerprint %s does not match tls_fingerprint" % (
        sandbox.host, real) in r.err, r


# ----------------------------------------------------- no STARTTLS offered
@pytest.fixture
def plain_dovecot(sandbox, tmp_path):
    """A second, real Dovecot: IMAP on one loopback port with ssl = no."""
    if os.geteuid() != 0:
        pytest.skip("the extra Dovecot is set up for root only")
    d = tempfile.mkdtemp(prefix="tegami-plain-dovecot-")
    os.chmod(d, 0o755)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    users = os.path.join(sandbox.dovecot_dir, "users")
    conf = os.path.join(d, "dovecot.conf")
    with open(conf, "w") as f:
        f.write(f"""\
protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login scram-sha-256
mail_location = maildir:~/Maildir
mail_uid = {sandbox.mail_uid}
mail_gid = {sandbox.mail_gid}
first_valid_uid = {sandbox.mail_uid}
first_valid_gid = {sandbox.mail_gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
  default_fields = uid={sandbox.mail_uid} gid={sandbox.mail_gid} home={sandbox.mail_dir}/%d/%n
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
}}
service imap {{
  executable = imap
}}
""")
    # Output to a file, never a pipe: the daemon would inherit it and run() would wait forever.
    with open(os.path.join(d, "start.out"), "wb") as out:
        subprocess.run(["dovecot", "-c", conf], check=True, stdin=subprocess.DEVNULL, stdout=out,
                       stderr=out, timeout=30)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    yield port
    subprocess.run(["doveadm", "-c", conf, "stop"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=30)
    pidfile = os.path.join(d, "run", "master.pid")
    deadline = time.monotonic() + 10
    while os.path.exists(pidfile) and time.monotonic() < deadline:
        time.sleep(0.05)
    shutil.rmtree(d, ignore_errors=True)


def test_no_starttls_refused(sandbox, tmp_path, plain_dovecot):
    r = probe(tmp_path, account(sandbox, "imap", port=plain_dovecot), "--auth", "--retries", "3")
    assert r.rc == 3, r
    assert "account work: 127.0.0.1:%d: STARTTLS was not offered by the server; refusing to continue " \
           "without TLS" % plain_dovecot in r.err, r
    assert "authenticating" not in r.err and r.err.count("attempt ") == 1, r


def test_no_starttls_allowed_with_tls_none_on_loopback(sandbox, tmp_path, plain_dovecot):
    r = probe(tmp_path, account(sandbox, "imap", port=plain_dovecot, tls="none", ca_file=None), "--auth")
    assert r.rc == 0, r
    assert r.out.startswith("OK imap://127.0.0.1:%d cleartext auth=" % plain_dovecot), r


# ------------------------------------------------------------------ SASL
@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN", "LOGIN"])
@pytest.mark.parametrize("scheme", ["imaps", "pop3s", "smtps"])
def test_sasl_mechanisms(sandbox, tmp_path, scheme, mech):
    r = probe(tmp_path, account(sandbox, scheme), "--auth", "--mech", mech)
    assert r.rc == 0, r
    assert "auth=%s" % mech in r.out, r


def test_default_choice_is_strongest(sandbox, tmp_path):
    r = probe(tmp_path, account(sandbox, "imaps"), "--auth")
    assert r.rc == 0 and "auth=SCRAM-SHA-256" in r.out, r


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "PLAIN"])
def test_wrong_password_is_one_attempt(sandbox, tmp_path, mech):
    r = probe(tmp_path, account(sandbox, "imaps", password="not-the-password"),
              "--auth", "--mech", mech, "--retries", "5", "--backoff-ms", "10")
    assert r.rc == 4, r
    assert r.err.count("attempt ") == 1 and r.err.count("authenticating with") == 1, r
    assert "account work: %s:%d: authentication failed" % (sandbox.host, sandbox.ports["imaps"]) in r.err, r
    assert "account error (authentication failure): not retrying" in r.err, r
    assert "retrying in" not in r.err, r


def test_network_errors_retry_with_backoff(sandbox, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]   # nobody listens once closed
    r = probe(tmp_path, account(sandbox, "imaps", port=closed), "--retries", "3", "--backoff-ms", "20")
    assert r.rc == 1, r
    assert r.err.count("attempt ") == 4 and r.err.count("retrying in") == 3, r
    assert "account work: 127.0.0.1:%d: connection refused" % closed in r.err, r


# ------------------------------------------------------------ credentials
def test_password_command(sandbox, tmp_path):
    keys = account(sandbox, "imaps", password=None,
                   password_command="printf '%s\\nsecond line\\n'" % sandbox.users[USER])
    r = probe(tmp_path, keys, "--auth")
    assert r.rc == 0, r


@pytest.mark.parametrize("command,needle", [
    ("echo oops >&2; exit 3", "password_command failed (exit status 3)"),
    ("true", "password_command printed nothing"),
    ("echo; echo password", "password_command printed an empty first line"),
    ("sleep 30", "password_command timed out after 0.5 s"),
    ("(sleep 30; echo late) | cat", "password_command timed out after 0.5 s"),
])
def test_password_command_errors(sandbox, tmp_path, command, needle):
    r = probe(tmp_path, account(sandbox, "imaps", password=None, password_command=command),
              "--auth", "--cred-timeout", "500", "--retries", "3", timeout=20)
    assert r.rc == 5, r
    assert "account work: " + needle in r.err, r
    assert "account error (credentials failure): not retrying" in r.err, r
    assert r.seconds < 5, r


def test_secret_never_logged(sandbox, tmp_path):
    secret = "Zq9-unique-secret-4711"
    r = probe(tmp_path, account(sandbox, "imaps", password=None, password_command="echo " + secret),
              "--cred-only", env={"TEGAMI_LOG_LEVEL": "debug"})
    assert r.rc == 0 and "OK credentials from password_command (%d bytes)" % len(secret) in r.out, r
    assert secret not in r.out + r.err, r


START_KEYRING = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness", "start-keyring")
KEYRING_SH = """\
set -e
"$START_KEYRING" keyring-pass
if [ -n "$STORE" ]; then printf %s "$STORE" | secret-tool store --label=tegami service tegami account work; fi
exec "$@"
"""


@pytest.fixture
def keyring_env(tmp_path):
    for tool in ("dbus-run-session", "gnome-keyring-daemon", "secret-tool"):
        if not shutil.which(tool):
            pytest.skip(tool + " not installed")
    home, runtime = tmp_path / "home", tmp_path / "run"
    home.mkdir()
    runtime.mkdir(mode=0o700)
    script = tmp_path / "keyring.sh"
    script.write_text(KEYRING_SH)
    return ({"HOME": str(home), "XDG_RUNTIME_DIR": str(runtime), "START_KEYRING": START_KEYRING},
            ["dbus-run-session", "--", "sh", str(script)])


def test_secret_service(sandbox, tmp_path, keyring_env):
    env, wrapper = keyring_env
    env["STORE"] = sandbox.users[USER]
    r = probe(tmp_path, account(sandbox, "imap", password=None), "--auth", env=env, wrapper=wrapper)
    assert r.rc == 0 and "auth=SCRAM-SHA-256" in r.out, r


def test_secret_service_without_item(sandbox, tmp_path, keyring_env):
    env, wrapper = keyring_env
    env["STORE"] = ""
    r = probe(tmp_path, account(sandbox, "imap", password=None), "--auth", env=env, wrapper=wrapper)
    assert r.rc == 5, r
    assert "account work: no password found in the Secret Service; store one with: " \
           "secret-tool store --label='tegami work' service tegami account work" in r.err, r


# ----------------------------------------------------------------- OAuth 2
@pytest.fixture(scope="module")
def oauth_sandbox():
    """A sandbox whose Dovecot also checks OAuth 2 tokens at a local introspection endpoint."""
    import harness   # conftest.py put tests/harness on sys.path
    sb = harness.Sandbox(postfix=False, oauth2=True).start()
    yield sb
    sb.stop()


def token_command(tmp_path, tokens):
    """An oauth2_token_command that prints the next of tokens on each run (a refresh)."""
    queue = tmp_path / "tokens"
    queue.write_text("".join(t + "\n" for t in tokens))
    return "head -n1 %s; sed -i 1d %s" % (queue, queue)


@pytest.mark.parametrize("mech", ["OAUTHBEARER", "XOAUTH2"])
@pytest.mark.parametrize("scheme", ["imaps", "imap", "pop3s"])
def test_oauth2(oauth_sandbox, tmp_path, scheme, mech):
    sb = oauth_sandbox
    token = sb.oauth2.issue(USER)
    keys = account(sb, scheme, password=None, oauth2_token_command=token_command(tmp_path, [token]))
    r = probe(tmp_path, keys, "--auth", "--mech", mech)
    assert r.rc == 0 and "auth=" + mech in r.out, r
    assert token in sb.oauth2.requests
    assert token not in r.out + r.err


def test_oauth2_default_is_oauthbearer(oauth_sandbox, tmp_path):
    sb = oauth_sandbox
    keys = account(sb, "imaps", password=None,
                   oauth2_token_command=token_command(tmp_path, [sb.oauth2.issue(USER)]))
    r = probe(tmp_path, keys, "--auth")
    assert r.rc == 0 and "auth=OAUTHBEARER" in r.out, r


@pytest.mark.parametrize("mech", ["OAUTHBEARER", "XOAUTH2"])
def test_oauth2_expired_token_is_refreshed_once(oauth_sandbox, tmp_path, mech):
    sb = oauth_sandbox
    stale = sb.oauth2.issue(USER)
    sb.oauth2.revoke(stale)
    fresh = sb.oauth2.issue(USER)
    keys = account(sb, "imaps", password=None, oauth2_token_command=token_command(tmp_path, [stale, fresh]))
    r = probe(tmp_path, keys, "--auth", "--mech", mech, "--retries", "5")
    assert r.rc == 0, r
    assert r.err.count("refreshing the OAuth 2 token") == 1 and r.err.count("authenticating with") == 2, r


def test_oauth2_refresh_still_refused_stops(oauth_sandbox, tmp_path):
    sb = oauth_sandbox
    keys = account(sb, "imaps", password=None, oauth2_token_command=token_command(tmp_path, ["bad1", "bad2", "bad3"]))
    r = probe(tmp_path, keys, "--auth", "--retries", "5")
    assert r.rc == 4, r
    assert r.err.count("authenticating with") == 2, r   # the token, then one refreshed token
    assert "account error (authentication failure): not retrying" in r.err, r
