"""Search (issue 9) through the `tegami` CLI and D-Bus, against a store filled by a
real POP3 fetch from the harness' Dovecot.

The module generates a corpus of real-world shapes (ISO-2022-JP, Shift_JIS and
EUC-JP subjects and bodies, UTF-8 quoted-printable and base64, a Shift_JIS body
labelled ISO-2022-JP, multipart/alternative nested in multipart/mixed with an
RFC 2231-named attachment, an HTML-only message, a 200 KB header block), runs
`tegamid --once` to fetch it into an encrypted store (--once only syncs),
starts tegamid over that store (which indexes what is not yet) and checks that a Japanese
word of 3+ characters is found in subjects and in bodies, and every operator of
the query language, newest first and paged.
"""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time

import dbus
import pytest

from tegami_bus import TEGAMI, TEGAMID, Bus, Daemon, write_config

USER = "alice@example.org"
NAME = "org.tegami.Mail1"
ROOT = "/org/tegami/Mail1"
IFACE = "org.tegami.Mail1"
WORD = "\u624b\u7d19\u306e\u691c\u7d22\u30c6\u30b9\u30c8"  # 手紙の検索テスト
BODY = "\u672c\u6587: " + WORD  # 本文: …
BLOB = bytes((i * 7 + i // 256) % 256 for i in range(40000))  # every byte value, CR and LF included
BLOB_NAME = "\u624b\u7d19\u306e\u6dfb\u4ed8.bin"  # 手紙の添付.bin
NOTE = "a note attached\n"
NOTE_CRLF = NOTE.replace("\n", "\r\n")


def b_word(text, charset):
    return "=?%s?B?%s?=" % (charset, base64.b64encode(text.encode(charset)).decode())


def msg(n, subject, body, ctype="text/plain; charset=utf-8", cte=None, frm=None, extra=""):
    head = ("From: %s\nTo: <%s>\nSubject: %s\nDate: Mon, %d Jan 2024 12:00:00 +0000\n"
            "Message-ID: <search-%d@example.net>\nMIME-Version: 1.0\nContent-Type: %s\n%s%s\n"
            % (frm or "Sender %d <sender%d@example.net>" % (n, n), USER, subject, n, n, ctype,
               "Content-Transfer-Encoding: %s\n" % cte if cte else "", extra))
    return head.encode() + body


def corpus():
    m = []
    # 1: ISO-2022-JP subject and body
    m.append(msg(1, b_word("jis " + WORD, "iso-2022-jp"), BODY.encode("iso-2022-jp") + b"\n",
                 "text/plain; charset=ISO-2022-JP", "7bit"))
    # 2: Shift_JIS, base64 body; from Taro
    m.append(msg(2, b_word("sjis subject", "shift_jis"), base64.encodebytes((BODY + "\n").encode("shift_jis")),
                 "text/plain; charset=Shift_JIS", "base64", frm="Taro <taro@example.jp>"))
    # 3: EUC-JP 8bit body, subject plain
    m.append(msg(3, "euc plain", (BODY + "\n").encode("euc-jp"), "text/plain; charset=EUC-JP", "8bit"))
    # 4: UTF-8 quoted-printable subject and body
    qp = "".join("=%02X" % c for c in ("qp " + WORD).encode())
    m.append(msg(4, "=?UTF-8?Q?%s?=" % qp, b"=E6=9C=AC=E6=96=87 quoted printable\n",
                 cte="quoted-printable"))
    # 5: mislabelled: raw Shift_JIS labelled ISO-2022-JP
    m.append(msg(5, "mislabelled", ("\u8aa4\u8a18\u306e\u6587\u5b57\u30b3\u30fc\u30c9 " + "\n").encode("shift_jis"),
                 "text/plain; charset=ISO-2022-JP"))
    # 6: nested multipart with attachments: binary, base64, its Japanese name in RFC 2231 continued
    # percent-encoded pieces; then a text one named with RFC 2047
    body6 = ("--outer\nContent-Type: multipart/alternative; boundary=\"inner\"\n\n"
             "--inner\nContent-Type: text/plain; charset=utf-8\n\nnested plain zebra\n"
             "--inner\nContent-Type: text/html; charset=utf-8\n\n<p>nested html</p>\n--inner--\n"
             "--outer\nContent-Type: application/octet-stream\nContent-Disposition: attachment;\n"
             " filename*0*=UTF-8''%E6%89%8B%E7%B4%99;\n filename*1*=%E3%81%AE%E6%B7%BB%E4%BB%98.bin\n"
             "Content-Transfer-Encoding: base64\n\n").encode() + base64.encodebytes(BLOB) + (
             "--outer\nContent-Type: text/plain; charset=utf-8\nContent-Disposition: attachment;"
             " filename=\"%s\"\n\n%s\n--outer--\n" % (b_word("\u30e1\u30e2.txt", "utf-8"), NOTE)).encode()
    m.append(msg(6, "with attachment", body6, "multipart/mixed; boundary=\"outer\""))
    # 7: HTML only, base64 UTF-8
    m.append(msg(7, "html only", base64.encodebytes("<html><body><p>html giraffe &amp; more</p></body></html>\n"
                                                    .encode()), "text/html; charset=utf-8", "base64"))
    # 8: a 200 KB header block
    hdrs = "".join("Received: from relay%d.example.org by mx.example.org; Mon, 8 Jan 2024\n" % i
                   for i in range(2900))
    m.append(msg(8, "big headers", b"after the big headers walrus\n", extra=hdrs))
    return m


def tegami(env, *args):
    return subprocess.run([TEGAMI, *args], capture_output=True, env=env, timeout=120)


def search(w, *args):
    r = tegami(w.env, "search", *args, "--json")
    assert r.returncode == 0, r.stderr
    return [m["subject"] for m in json.loads(r.stdout)["messages"]]


@pytest.fixture(scope="module")
def world(sandbox):
    sandbox.doveadm("expunge", "-u", USER, "mailbox", "INBOX", "all")
    sandbox.seed_maildir(USER, "INBOX", corpus())
    work = tempfile.mkdtemp(prefix="tgse")
    cfg = write_config(os.path.join(work, "config.ini"), (
        "[store]\nkey = file\n\n"
        "[account home]\naddress = %s\npassword = %s\npop3 = pop3s://%s:%d\nca_file = %s\n"
        % (USER, sandbox.users[USER], sandbox.host, sandbox.ports["pop3s"], sandbox.ca_file)))
    data = os.path.join(work, "data")
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    r = subprocess.run([TEGAMID, "--config", cfg, "--data-dir", data, "--once", "--account", "home"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    bus = Bus()
    d = Daemon(bus.env, cfg, data)
    try:
        d.wait_for("running")
        ns = type("World", (), {})()
        ns.env, ns.daemon, ns.conn, ns.data = bus.env, d, bus.connect(), data
        # The indexer catches up after open; wait until every message is searchable.
        deadline = time.time() + 60
        while len(search(ns, "account:home")) < 8 or len(search(ns, "walrus")) < 1:
            assert time.time() < deadline, "indexing did not finish"
            time.sleep(0.2)
        yield ns
        ns.conn.close()
        assert d.stop() == 0
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
        bus.close()
        shutil.rmtree(work, ignore_errors=True)


def test_japanese_word_in_subject_and_body(world):
    found = search(world, WORD)
    # 1 (subject and body), 2 (body), 3 (body), 4 (subject): newest first
    assert found == ["qp " + WORD, "euc plain", "sjis subject", "jis " + WORD]
    assert search(world, "subject:" + WORD) == ["qp " + WORD, "jis " + WORD]
    assert search(world, "body:" + WORD) == ["euc plain", "sjis subject", "jis " + WORD]


def test_decoding_shapes(world):
    assert search(world, "\u8aa4\u8a18\u306e\u6587\u5b57") == ["mislabelled"]  # Shift_JIS labelled ISO-2022-JP
    assert search(world, "zebra") == ["with attachment"]  # nested text/plain
    assert search(world, "giraffe") == ["html only"]  # HTML reduced to text
    assert search(world, "\"nested html\"") == []  # the plain alternative is the one indexed
    assert search(world, "walrus") == ["big headers"]  # text after a 200 KB header block


def test_operators(world):
    assert search(world, "from:taro") == ["sjis subject"]
    assert search(world, "from:\"Sender 7\"") == ["html only"]
    assert search(world, "to:alice@example") == search(world, "account:home")
    assert len(search(world, "account:home")) == 8
    assert search(world, "account:nobody") == []
    assert len(search(world, "folder:INBOX")) == 8
    assert search(world, "folder:Elsewhere") == []
    assert search(world, "has:attachment") == ["with attachment"]
    assert search(world, "before:2024-01-03") == ["sjis subject", "jis " + WORD]
    assert search(world, "after:2024-01-07") == ["big headers", "html only"]
    assert search(world, "after:2024-01-02 before:2024-01-04") == ["euc plain", "sjis subject"]
    assert len(search(world, "is:unread")) == 8
    assert search(world, "is:flagged") == []
    ids = {m["subject"]: m["id"] for m in json.loads(
        tegami(world.env, "search", "account:home", "--json").stdout)["messages"]}
    r = tegami(world.env, "flag", str(ids["euc plain"]), "+seen", "+flagged")
    assert r.returncode == 0, r.stderr
    assert search(world, "is:flagged") == ["euc plain"]
    assert "euc plain" not in search(world, "is:unread") and len(search(world, "is:unread")) == 7
    assert search(world, "is:flagged", WORD) == ["euc plain"]


def test_paging_and_cli(world):
    everything = search(world, "account:home")
    assert search(world, "account:home", "--limit", "3") == everything[:3]
    assert search(world, "account:home", "--limit", "3", "--offset", "6") == everything[6:]
    assert search(world, "account:home", "--account", "home") == everything
    r = tegami(world.env, "search", "zebra")
    assert r.returncode == 0 and b"with attachment" in r.stdout
    r = tegami(world.env, "search", "nothing-matches-this")
    assert r.returncode == 0 and b"no messages match" in r.stdout
    r = tegami(world.env, "search", "is:bogus")
    assert r.returncode == 1 and b"InvalidArgs" in r.stderr and b"bogus" in r.stderr
    assert tegami(world.env, "search").returncode == 2


def test_dbus_search(world):
    res = world.conn.call_blocking(NAME, ROOT, IFACE, "Search", "sa{sv}",
                                   (WORD, {"limit": dbus.UInt32(2), "account": "home"}), timeout=60)
    assert [str(m["subject"]) for m in res] == ["qp " + WORD, "euc plain"]
    assert all(str(m["account"]) == "home" and str(m["folder"]) == "INBOX" for m in res)
    res = world.conn.call_blocking(NAME, ROOT, IFACE, "Search", "sa{sv}",
                                   (WORD, {"limit": dbus.UInt32(2), "offset": dbus.UInt64(2)}), timeout=60)
    assert [str(m["subject"]) for m in res] == ["sjis subject", "jis " + WORD]


def test_no_plaintext_in_store(world):
    # The index lives in the encrypted file: neither a body word nor a Japanese word shows in it or its WAL.
    for name in os.listdir(world.data):
        with open(os.path.join(world.data, name), "rb") as f:
            data = f.read()
        for marker in (b"walrus", b"giraffe", WORD.encode(), "\u691c\u7d22".encode()):
            assert marker not in data, "plaintext %r in %s" % (marker, name)


def test_show_attachment(world):
    ids = {m["subject"]: m["id"] for m in json.loads(
        tegami(world.env, "search", "account:home", "--json").stdout)["messages"]}
    mid = str(ids["with attachment"])
    # Listed after the body, numbered from 1, with the decoded names and sizes.
    r = tegami(world.env, "show", mid)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "nested plain zebra" in out
    assert "   1  %s  (application/octet-stream, %d bytes)\n" % (BLOB_NAME, len(BLOB)) in out
    assert "   2  \u30e1\u30e2.txt  (text/plain, %d bytes)\n" % len(NOTE_CRLF) in out
    r = tegami(world.env, "show", mid, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["attachments"] == [
        {"name": BLOB_NAME, "type": "application/octet-stream", "size": len(BLOB)},
        {"name": "\u30e1\u30e2.txt", "type": "text/plain", "size": len(NOTE_CRLF)}]
    # Extracted byte-exact, to a pipe and to a file.
    r = tegami(world.env, "show", mid, "--attachment", "1")
    assert r.returncode == 0, r.stderr
    assert r.stdout == BLOB
    path = os.path.join(tempfile.mkdtemp(prefix="tgat"), BLOB_NAME)
    r = tegami(world.env, "show", mid, "--attachment=1", "-o", path)
    assert r.returncode == 0 and r.stdout == b"", r.stderr
    with open(path, "rb") as f:
        assert f.read() == BLOB
    shutil.rmtree(os.path.dirname(path))
    # A text attachment too comes out as stored: CR LF, as POP3 delivered it.
    assert tegami(world.env, "show", mid, "--attachment", "2").stdout == NOTE_CRLF.encode()
    # Out of range, or a message without attachments: a clear error and a failing status.
    r = tegami(world.env, "show", mid, "--attachment", "3")
    assert r.returncode == 1 and r.stdout == b""
    assert b"has 2 attachments: there is no attachment 3" in r.stderr
    r = tegami(world.env, "show", str(ids["euc plain"]), "--attachment", "1")
    assert r.returncode == 1 and b"has no attachments" in r.stderr
    for bad in (["--attachment", "0"], ["--attachment", "x"], ["-o", "/tmp/x"], ["--attachment", "1", "--raw"]):
        r = tegami(world.env, "show", mid, *bad)
        assert r.returncode == 2 and r.stdout == b"", (bad, r.stderr)
    assert tegami(world.env, "list", "home", "INBOX", "--attachment", "1").returncode == 2


def test_show_attachment_not_binary_to_a_terminal(world):
    import pty
    ids = {m["subject"]: m["id"] for m in json.loads(
        tegami(world.env, "search", "account:home", "--json").stdout)["messages"]}
    mid = str(ids["with attachment"])
    master, slave = pty.openpty()
    try:
        r = subprocess.run([TEGAMI, "show", mid, "--attachment", "1"], stdout=slave, stderr=subprocess.PIPE,
                           env=world.env, timeout=120)
        assert r.returncode == 2 and b"binary" in r.stderr and b"-o FILE" in r.stderr
        r = subprocess.run([TEGAMI, "show", mid, "--attachment", "2"], stdout=slave, stderr=subprocess.PIPE,
                           env=world.env, timeout=120)
        assert r.returncode == 0, r.stderr  # text may go to a terminal
        assert os.read(master, 4096).replace(b"\r", b"") == NOTE.encode()  # the terminal adds CRs
    finally:
        os.close(master)
        os.close(slave)
