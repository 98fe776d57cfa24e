#!/usr/bin/python3
"""Deterministic generator of realistic mail for tegami's benchmarks.

The same --seed and --count always give the same bytes, so every tool in a
benchmark run (and every run) sees one corpus. What makes it realistic:

- sizes: message bodies are log-normal around a 4 KB median, and about one
  message in 1,400 carries a base64 attachment of 1-5 MB (the tail that
  dominates bytes in real mailboxes);
- headers: ASCII, UTF-8 encoded words (RFC 2047 B and Q), ISO-2022-JP encoded
  words (Japanese mail as many clients still send it), and some raw UTF-8
  (RFC 6532); threads via In-Reply-To/References;
- bodies: text/plain in us-ascii, UTF-8 (quoted-printable or base64) or
  ISO-2022-JP (7bit), and multipart/mixed with attachments.

Output: --mbox FILE (mboxrd: "From " separators, body lines starting with
">*From " get one more ">"), or --maildir DIR (one file per message, names
0000001.eml ...). Prints the message count and total bytes on stderr.
26,000 messages with the default seed come to 186 MB (message median 4.1 KB).
"""
import argparse
import base64
import email.utils
import math
import os
import quopri
import random
import sys

ASCII_WORDS = ("the meeting report budget review draft quarterly release server backup schedule invoice "
               "project update team customer feedback design deadline travel plan notes agenda summary "
               "please find attached below thanks regards question answer issue build test").split()
JA_WORDS = ("会議 報告 予算 確認 資料 添付 明日 今週 来週 お願い します 件名 返信 よろしく 日程 調整 "
            "東京 大阪 手紙 メール 同期 設計 試験 結果").split()
NAMES = [("Alice Martin", "alice"), ("Bob Tanaka", "bob"), ("Carol Lee", "carol"), ("Dave Müller", "dave"),
         ("Émilie Dubois", "emilie"), ("山田 太郎", "yamada"), ("佐藤 花子", "sato"), ("Ólafur Jónsson", "olafur"),
         ("Zhang Wei", "zhang"), ("鈴木 一郎", "suzuki")]
DOMAINS = ["example.org", "example.net", "example.com", "mail.example.jp"]

MEDIAN = 4096
SIGMA = 0.60          # log-normal spread of body sizes
ATTACH_P = 0.0007     # share of messages with a multi-MB attachment


def encoded_word(text, rng, kind):
    """One RFC 2047 encoded word (or several for long text) of kind b/q/jis."""
    if kind == "jis":
        raw = text.encode("iso2022_jp")
        return "=?ISO-2022-JP?B?" + base64.b64encode(raw).decode() + "?="
    raw = text.encode("utf-8")
    if kind == "b":
        # At most 45 bytes per word, never splitting a character across words.
        words, cur = [], ""
        for c in text:
            if len((cur + c).encode("utf-8")) > 45:
                words.append(cur)
                cur = ""
            cur += c
        words.append(cur)
        return " ".join("=?UTF-8?B?" + base64.b64encode(w.encode("utf-8")).decode() + "?=" for w in words)
    q = quopri.encodestring(raw, header=True).decode().replace("=\n", "")
    q = q.replace("?", "=3F")
    return "=?UTF-8?Q?" + q + "?="


def header_text(text, rng, japanese):
    """A header value as a client would write it."""
    if all(ord(c) < 128 for c in text):
        return text
    if japanese:
        kind = rng.choices(["jis", "b", "raw"], [5, 4, 1])[0]
    else:
        kind = rng.choices(["q", "b", "raw"], [5, 3, 1])[0]
    return text if kind == "raw" else encoded_word(text, rng, kind)


def address(rng):
    name, local = rng.choice(NAMES)
    japanese = any(ord(c) > 0x3000 for c in name)
    return f"{header_text(name, rng, japanese)} <{local}@{rng.choice(DOMAINS)}>"


def words(rng, japanese, n):
    pool = JA_WORDS if japanese else ASCII_WORDS
    sep = "" if japanese else " "
    return sep.join(rng.choice(pool) for _ in range(n))


def text_lines(rng, japanese, size):
    """Plain text lines (no line ending) of about size characters/bytes."""
    lines, total = [], 0
    while total < size:
        line = words(rng, japanese, rng.randint(4, 12) if not japanese else rng.randint(8, 24))
        if not japanese and rng.random() < 0.02:
            line = "From " + line  # exercises mbox quoting
        lines.append(line)
        total += len(line.encode("utf-8")) + 1
    return lines


def body_part(rng, size):
    """(headers, body lines) of a text/plain part."""
    kind = rng.choices(["ascii", "utf8-qp", "utf8-b64", "jis"], [55, 20, 10, 15])[0]
    if kind == "ascii":
        return (["Content-Type: text/plain; charset=us-ascii", "Content-Transfer-Encoding: 7bit"],
                text_lines(rng, False, size))
    if kind == "jis":
        lines = text_lines(rng, True, size // 2)
        enc = [l.encode("iso2022_jp").decode("ascii") for l in lines]
        return (["Content-Type: text/plain; charset=ISO-2022-JP", "Content-Transfer-Encoding: 7bit"], enc)
    japanese = rng.random() < 0.5
    text = "\n".join(text_lines(rng, japanese, size if not japanese else size // 3)) + "\n"
    raw = text.encode("utf-8")
    if kind == "utf8-qp":
        body = quopri.encodestring(raw).decode("ascii").split("\n")
        return (["Content-Type: text/plain; charset=UTF-8", "Content-Transfer-Encoding: quoted-printable"], body)
    b = base64.b64encode(raw).decode()
    return (["Content-Type: text/plain; charset=UTF-8", "Content-Transfer-Encoding: base64"],
            [b[i:i + 76] for i in range(0, len(b), 76)])


def attachment(rng, size):
    data = rng.randbytes(size * 3 // 4)
    b = base64.b64encode(data).decode()
    name = rng.choice(["report.pdf", "photo.jpg", "slides.pptx", "data.zip", "資料.pdf"])
    fname = name if name.isascii() else encoded_word(name, rng, "b")
    return ([f'Content-Type: application/octet-stream; name="{fname}"', "Content-Transfer-Encoding: base64",
             f'Content-Disposition: attachment; filename="{fname}"'],
            [b[i:i + 76] for i in range(0, len(b), 76)])


def message(rng, i, msgids):
    japanese = rng.random() < 0.3
    size = int(math.exp(rng.gauss(math.log(MEDIAN), SIGMA)))
    subject = words(rng, japanese, rng.randint(2, 6) if not japanese else rng.randint(3, 8))
    if not japanese and rng.random() < 0.25:
        subject += " – " + rng.choice(["café", "naïve", "résumé", "Grüße", "日本"])
    date = 1672531200 + i * 1200 + rng.randint(0, 1199)
    msgid = f"<{i}.{rng.getrandbits(48):012x}@{rng.choice(DOMAINS)}>"
    h = [f"Return-Path: <{rng.choice(NAMES)[1]}@{rng.choice(DOMAINS)}>",
         f"Date: {email.utils.formatdate(date)}",
         f"From: {address(rng)}",
         "To: " + ", ".join(address(rng) for _ in range(rng.randint(1, 3)))]
    if rng.random() < 0.3:
        h.append("Cc: " + ", ".join(address(rng) for _ in range(rng.randint(1, 4))))
    prefix = "Re: " if msgids and rng.random() < 0.4 else ""
    h.append("Subject: " + prefix + header_text(subject, rng, japanese))
    h.append("Message-ID: " + msgid)
    if prefix:
        parent = rng.choice(msgids[-50:])
        h.append("In-Reply-To: " + parent)
        h.append("References: " + parent)
    msgids.append(msgid)
    h.append("MIME-Version: 1.0")

    if rng.random() < ATTACH_P:
        boundary = f"=_tegami_{i:08d}"
        ph, pb = body_part(rng, size)
        ah, ab = attachment(rng, int(math.exp(rng.uniform(math.log(1 << 20), math.log(5 << 20)))))
        h.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
        lines = h + ["", "This is a multi-part message in MIME format.", "", "--" + boundary] + ph + [""] + pb
        lines += ["--" + boundary] + ah + [""] + ab + ["--" + boundary + "--"]
    else:
        ph, pb = body_part(rng, size)
        lines = h + ph + [""] + pb
    return ("\r\n".join(lines) + "\r\n").encode("utf-8"), date


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=26000)
    ap.add_argument("--seed", type=int, default=1)
    out = ap.add_mutually_exclusive_group(required=True)
    out.add_argument("--mbox", help="write one mboxrd file ('-' for stdout)")
    out.add_argument("--maildir", help="write one .eml file per message into this directory")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    msgids, total = [], 0
    if args.mbox:
        f = sys.stdout.buffer if args.mbox == "-" else open(args.mbox, "wb")
    else:
        os.makedirs(args.maildir, exist_ok=True)
    for i in range(args.count):
        data, date = message(rng, i, msgids)
        total += len(data)
        if args.mbox:
            f.write(b"From tegami-corpus " + email.utils.formatdate(date, usegmt=True).encode() + b"\n")
            for line in data.split(b"\n")[:-1]:
                stripped = line.lstrip(b">")
                if stripped.startswith(b"From "):
                    line = b">" + line
                f.write(line + b"\n")
            f.write(b"\n")
        else:
            with open(os.path.join(args.maildir, f"{i + 1:07d}.eml"), "wb") as m:
                m.write(data)
    if args.mbox and f is not sys.stdout.buffer:
        f.close()
    print(f"{args.count} messages, {total} bytes ({total / 1e6:.1f} MB)", file=sys.stderr)


if __name__ == "__main__":
    main()
