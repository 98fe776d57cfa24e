"""tegamid and its encrypted store: the key kinds as the daemon uses them.

key = file creates the store and its key beside it; key = passphrase starts
locked until `tegami unlock`; a loose key file, a damaged store and a wrong
passphrase are refused with messages that say which file and why.
"""
import os
import subprocess

import pytest

from tegami_bus import TEGAMI, TEGAMID, Bus, Daemon, write_config

CONFIG = """[store]
key = {key}

[account work]
address = alice@example.org
imap = imaps://127.0.0.1:1993
"""


@pytest.fixture
def bus():
    b = Bus()
    yield b
    b.close()


def tegami(bus, *args, stdin=None):
    return subprocess.run([TEGAMI, *args], env=bus.env, input=stdin, capture_output=True, text=True, timeout=120)


def start(bus, tmp_path, key):
    cfg = write_config(str(tmp_path / "config.ini"), CONFIG.format(key=key))
    d = Daemon(bus.env, cfg, str(tmp_path / "data"))
    return d


def test_file_key_creates_an_encrypted_store(bus, tmp_path):
    d = start(bus, tmp_path, "file")
    d.wait_for("running")
    assert d.stop() == 0
    data = tmp_path / "data"
    names = sorted(os.listdir(data))
    assert {"mail.db", "mail.db.key", "mail.db.keywrap"} <= set(names), names
    assert (data / "mail.db.key").stat().st_mode & 0o777 == 0o600
    db = (data / "mail.db").read_bytes()
    assert len(db) >= 4096 and not db.startswith(b"SQLite format 3"), "the store must not be plain SQLite"
    for table in (b"CREATE TABLE", b"messages", b"outbox"):
        assert table not in db, "schema text readable on disk"

    # And it opens again with the same key.
    d = start(bus, tmp_path, "file")
    d.wait_for("running")
    assert d.stop() == 0


def test_loose_key_file_is_refused(bus, tmp_path):
    d = start(bus, tmp_path, "file")
    d.wait_for("running")
    assert d.stop() == 0
    key = tmp_path / "data" / "mail.db.key"
    key.chmod(0o644)
    d = start(bus, tmp_path, "file")
    assert d.proc.wait(timeout=10) != 0
    line = d.wait_for("start-up failed")
    assert str(key) in line and "644" in line, line


def test_damaged_store_is_a_clear_error(bus, tmp_path):
    d = start(bus, tmp_path, "file")
    d.wait_for("running")
    assert d.stop() == 0
    db = tmp_path / "data" / "mail.db"
    raw = bytearray(db.read_bytes())
    raw[4096 + 500] ^= 0x40     # a byte inside page 2
    db.write_bytes(bytes(raw))
    d = start(bus, tmp_path, "file")
    assert d.proc.wait(timeout=10) != 0
    line = d.wait_for("start-up failed")
    assert "damaged or the key is wrong" in line, line


def test_passphrase_store_starts_locked_and_unlocks(bus, tmp_path):
    d = start(bus, tmp_path, "passphrase")
    try:
        d.wait_for("running")
        st = tegami(bus, "status", "--json")
        assert st.returncode == 0, st.stderr
        assert '"locked"' in st.stdout, st.stdout

        # The first passphrase becomes the store's.
        r = tegami(bus, "unlock", stdin="correct horse battery\n")
        assert r.returncode == 0, r.stderr
        assert "unlocked" in r.stdout
        st = tegami(bus, "status", "--json")
        assert '"running"' in st.stdout and '"locked"' not in st.stdout, st.stdout
        r = tegami(bus, "unlock", stdin="again\n")
        assert r.returncode == 1 and "not locked" in r.stderr, r
    finally:
        assert d.stop() == 0

    d = start(bus, tmp_path, "passphrase")
    try:
        d.wait_for("running")
        r = tegami(bus, "unlock", stdin="wrong guess\n")
        assert r.returncode == 1 and "passphrase" in r.stderr, r
        st = tegami(bus, "status", "--json")
        assert '"locked"' in st.stdout
        r = tegami(bus, "unlock", stdin="correct horse battery\n")
        assert r.returncode == 0, r.stderr
    finally:
        assert d.stop() == 0
    assert not any(b"correct horse" in (tmp_path / "data" / n).read_bytes()
                   for n in os.listdir(tmp_path / "data"))
    assert not any("correct horse" in line for line in d.seen)


def outbox_ids(bus):
    import json
    r = tegami(bus, "--json", "outbox")
    assert r.returncode == 0, r.stderr
    return sorted(e["id"] for e in json.loads(r.stdout))


MSG = "From: alice@example.org\nTo: bob@example.org\nSubject: kept across a rekey\n\nhello\n"


def test_rekey_re_encrypts_and_keeps_the_data(bus, tmp_path):
    """`tegami rekey`: the store is re-encrypted under a new data key (every page and the wrapped key
    change), what it held is still there, and it opens again after a restart."""
    cfg = write_config(str(tmp_path / "config.ini"), CONFIG.format(key="file") +
                       "smtp = smtps://127.0.0.1:1465\n")  # unreachable: the message stays queued
    d = Daemon(bus.env, cfg, str(tmp_path / "data"))
    try:
        d.wait_for("running")
        assert tegami(bus, "send", stdin=MSG).returncode == 0
        before_ids = outbox_ids(bus)
        assert len(before_ids) == 1
        data = tmp_path / "data"
        wrap0, db0 = (data / "mail.db.keywrap").read_bytes(), (data / "mail.db").read_bytes()
        r = tegami(bus, "rekey")
        assert r.returncode == 0 and "new data key" in r.stdout, r
        assert outbox_ids(bus) == before_ids  # served again from the reopened store
        wrap1, db1 = (data / "mail.db.keywrap").read_bytes(), (data / "mail.db").read_bytes()
        assert wrap1 != wrap0
        # Every page was rewritten: no 4 KB page of the old file survives as it was.
        pages0 = {db0[i:i + 4096] for i in range(0, len(db0), 4096)}
        assert not any(db1[i:i + 4096] in pages0 for i in range(0, len(db1), 4096))
    finally:
        assert d.stop() == 0
    d = Daemon(bus.env, cfg, str(tmp_path / "data"))
    try:
        d.wait_for("running")
        assert outbox_ids(bus) == before_ids
    finally:
        assert d.stop() == 0


def test_rekey_a_passphrase_store(bus, tmp_path):
    d = start(bus, tmp_path, "passphrase")
    try:
        d.wait_for("locked")
        assert tegami(bus, "rekey").returncode == 1  # locked: unlock first
        assert tegami(bus, "unlock", stdin="correct horse battery\n").returncode == 0
        r = tegami(bus, "rekey", stdin="wrong guess\n")
        assert r.returncode == 1 and "passphrase" in r.stderr, r
        r = tegami(bus, "rekey", stdin="correct horse battery\n")
        assert r.returncode == 0, r
        assert tegami(bus, "status").returncode == 0
    finally:
        assert d.stop() == 0
    d = start(bus, tmp_path, "passphrase")
    try:
        d.wait_for("locked")
        assert tegami(bus, "unlock", stdin="correct horse battery\n").returncode == 0
    finally:
        assert d.stop() == 0
