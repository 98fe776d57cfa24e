"""tegamid's process behaviour: config errors, signals, reload, log format."""
import os
import queue
import signal
import subprocess
import threading
import time

import pytest

TEGAMID = os.environ.get("TEGAMID", "build/daemon/tegamid")

# These tests are about the process, not D-Bus: keep a developer's desktop bus
# (and a tegamid running on it) out of them.
os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)

GOOD = """[store]
key = file

[account work]
address = alice@example.org
imap = imaps://127.0.0.1:1993
smtp = smtps://127.0.0.1:1465
"""


def write(path, text, mode=0o600):
    path.write_text(text)
    path.chmod(mode)
    return str(path)


def start(tmp_path, cfg, *extra, env=None):
    proc = subprocess.Popen(
        [TEGAMID, "--config", cfg, "--data-dir", str(tmp_path / "data"), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    proc.lines = queue.Queue()
    proc.seen = []

    def pump():
        for line in proc.stderr:
            proc.lines.put(line.rstrip("\n"))
        proc.lines.put(None)
    threading.Thread(target=pump, daemon=True).start()
    return proc


def wait_for_line(proc, needle, timeout=5.0):
    """Reads stderr lines until one contains needle; returns the lines read since the last call."""
    lines = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = proc.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line is None:
            raise AssertionError(f"no line with {needle!r}; got {lines}")
        lines.append(line)
        proc.seen.append(line)
        if needle in line:
            return lines


def test_version_and_help():
    out = subprocess.run([TEGAMID, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("tegamid ")
    out = subprocess.run([TEGAMID, "--help"], capture_output=True, text=True, check=True).stdout
    assert "--once" in out and "--data-dir" in out


def test_bad_option_is_usage_error():
    r = subprocess.run([TEGAMID, "--frobnicate"], capture_output=True, text=True)
    assert r.returncode == 2


@pytest.mark.parametrize("text,mode,line,needles", [
    (GOOD + "colour = blue\n", 0o600, 8, ["account work", '"colour"']),
    ("[account a]\nimap = imaps://h\n", 0o600, 1, ["account a", '"address"']),
    ("[account a]\naddress = a@b\n", 0o600, 1, ["account a", '"imap"', '"pop3"']),
    ("[account a]\naddress = a@b\nimap = imaps://h\npop3 = pop3s://h\n", 0o600, 4, ["account a", "both"]),
    ("[account a]\naddress = a@b\nimap = imapz://h\n", 0o600, 3, ["account a", '"imap"', "bad URL"]),
    ("[account a]\naddress = a@b\nimap = imaps://h\npoll_interval = often\n", 0o600, 4,
     ["account a", '"poll_interval"', "bad number"]),
    ("[account a]\naddress = a@b\nimap = imap://mail.example.org\ntls = none\n", 0o600, 1,
     ["account a", '"tls"', "loopback"]),
    ("[account a]\naddress = a@b\nimap = imaps://h\npassword = hunter2\n", 0o640, 1,
     ["account a", '"password"', "readable"]),
])
def test_config_errors(tmp_path, text, mode, line, needles):
    cfg = write(tmp_path / "config.ini", text, mode)
    r = subprocess.run([TEGAMID, "--config", cfg, "--check-config"], capture_output=True, text=True)
    assert r.returncode != 0
    assert f"{cfg}:{line}: " in r.stderr
    for n in needles:
        assert n in r.stderr
    assert "hunter2" not in r.stderr


def test_missing_config_file(tmp_path):
    r = subprocess.run([TEGAMID, "--config", str(tmp_path / "nope.ini")], capture_output=True, text=True)
    assert r.returncode != 0 and "nope.ini" in r.stderr and "No such file" in r.stderr


def test_sigterm_exits_zero_within_a_second(tmp_path):
    cfg = write(tmp_path / "config.ini", GOOD)
    proc = start(tmp_path, cfg)
    wait_for_line(proc, "running")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0
    assert time.monotonic() - t0 < 1.0
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700


def test_sigint_exits_zero(tmp_path):
    cfg = write(tmp_path / "config.ini", GOOD)
    proc = start(tmp_path, cfg)
    wait_for_line(proc, "running")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=5) == 0


def test_sighup_with_broken_config_keeps_old_one(tmp_path):
    path = tmp_path / "config.ini"
    cfg = write(path, GOOD)
    proc = start(tmp_path, cfg)
    try:
        wait_for_line(proc, "running")
        write(path, GOOD + "[account broken]\nimap = imaps://h\n")
        proc.send_signal(signal.SIGHUP)
        lines = wait_for_line(proc, "reload rejected")
        bad = [l for l in lines if "reload rejected" in l][0]
        assert "keeping the running configuration" in bad and "account broken" in bad and '"address"' in bad
        time.sleep(0.2)
        assert proc.poll() is None, "tegamid must keep running on the old config"

        # A good file is then taken.
        write(path, GOOD + "[account home]\naddress = b@example.org\npop3 = pop3s://127.0.0.1:1995\n")
        proc.send_signal(signal.SIGHUP)
        lines = wait_for_line(proc, "configuration reloaded")
        assert "2 account(s)" in lines[-1]
        wait_for_line(proc, "account home: pop3s://127.0.0.1:1995")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0


def test_journal_priority_prefixes(tmp_path):
    """Under journald (JOURNAL_STREAM = our stderr's dev:ino) lines carry <N> priorities."""
    cfg = write(tmp_path / "config.ini", GOOD + "bogus = 1\n")
    errf = open(tmp_path / "stderr", "w+")
    st = os.fstat(errf.fileno())
    env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
    r = subprocess.run([TEGAMID, "--config", cfg, "--check-config"], stderr=errf, env=env)
    assert r.returncode != 0
    errf.seek(0)
    line = errf.read().strip()
    assert line.startswith("<3>") and '"bogus"' in line
    # Without a matching stream the terminal form is used.
    r = subprocess.run([TEGAMID, "--config", cfg, "--check-config"], capture_output=True, text=True,
                       env=dict(os.environ, JOURNAL_STREAM="1:1"))
    assert r.stderr.startswith("tegamid: error: ")


def test_secret_never_logged(tmp_path):
    cfg = write(tmp_path / "config.ini", GOOD.replace("[account work]\n", "[account work]\npassword = Zq9-secret\n"))
    proc = start(tmp_path, cfg, "--log-level", "debug")
    wait_for_line(proc, "running")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0
    time.sleep(0.1)
    while not proc.lines.empty():
        line = proc.lines.get()
        if line is not None:
            proc.seen.append(line)
    assert proc.seen and not any("Zq9-secret" in l for l in proc.seen)
