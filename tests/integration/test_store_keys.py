"""The store key kept by a real Secret Service (gnome-keyring-daemon on a private session bus).

Each session is `dbus-run-session` with HOME and XDG_RUNTIME_DIR in a temp dir, where
gnome-keyring-daemon is unlocked with a known password. store/test-keys-secret-service does
the store side: `create` (auto must pick the Secret Service) and `reopen` (kind secret-service).
"""
import os
import shutil
import subprocess

import pytest

BUILD = os.environ.get("TEGAMI_BUILD_ROOT", "build")
HELPER = os.environ.get("TEGAMI_TEST_KEYS_SS", os.path.join(BUILD, "store", "test-keys-secret-service"))
START_KEYRING = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness", "start-keyring")
MARKERS = [b"MARKER-ZEBRA-7731", "MARKER-ZEBRA-7731".encode("utf-16-le")]

SESSION = """set -e
"$START_KEYRING" "$KEYRING_PASSWORD"
"$HELPER" "$STEP" "$STORE"
secret-tool lookup application tegami purpose store-key store "$STORE" | wc -c
"""

pytestmark = pytest.mark.skipif(
    not all(shutil.which(p) for p in ("dbus-run-session", "gnome-keyring-daemon", "secret-tool")),
    reason="needs dbus-run-session, gnome-keyring-daemon and secret-tool")


def session(tmp_path, step, home="home", password="pw"):
    """Runs one helper step inside a fresh private bus with its own keyring daemon."""
    run = tmp_path / ("run-" + home)
    run.mkdir(mode=0o700, exist_ok=True)
    (tmp_path / home).mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / home),
        "XDG_RUNTIME_DIR": str(run),
        "HELPER": HELPER,
        "START_KEYRING": START_KEYRING,
        "STEP": step,
        "STORE": str(tmp_path / "data" / "mail.db"),
        "KEYRING_PASSWORD": password,
    }
    return subprocess.run(["dbus-run-session", "--", "sh", "-c", SESSION], env=env, capture_output=True,
                          text=True, timeout=120)


def test_key_stored_on_first_open_and_found_on_second(tmp_path):
    (tmp_path / "data").mkdir()
    first = session(tmp_path, "create")
    assert first.returncode == 0, first.stderr
    assert "ok create" in first.stdout
    assert first.stdout.split()[-1] == "32", "the keyring item holds the 32-byte key-encryption key"
    names = sorted(os.listdir(tmp_path / "data"))
    assert "mail.db.keywrap" in names and "mail.db.key" not in names, names

    # A new bus and a new daemon reading the same keyring from disk.
    second = session(tmp_path, "reopen")
    assert second.returncode == 0, second.stderr
    assert "ok reopen" in second.stdout

    for name in os.listdir(tmp_path / "data"):
        data = (tmp_path / "data" / name).read_bytes()
        for m in MARKERS:
            assert m not in data, f"plaintext marker in {name}"


def test_other_keyring_has_no_key(tmp_path):
    (tmp_path / "data").mkdir()
    assert session(tmp_path, "create").returncode == 0
    other = session(tmp_path, "reopen", home="other-home")
    assert other.returncode != 0
    assert "no Secret Service item for store" in other.stderr


def test_locked_keyring_is_a_clear_error(tmp_path):
    """The keyring exists but nobody unlocked it: no prompt is driven, the caller hears why."""
    (tmp_path / "data").mkdir()
    assert session(tmp_path, "create").returncode == 0
    locked = session(tmp_path, "reopen", password="")
    assert locked.returncode != 0
    assert "is locked" in locked.stderr and "unlock it and retry" in locked.stderr, locked.stderr


def test_auto_uses_key_file_without_bus(tmp_path):
    """No session bus at all: `auto` falls back to the key file (the helper then refuses)."""
    (tmp_path / "data").mkdir()
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(run)}
    proc = subprocess.run([HELPER, "create", str(tmp_path / "data" / "mail.db")], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0
    assert "auto does not pick the Secret Service" in proc.stderr
