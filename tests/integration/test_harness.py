"""Acceptance test for the mail sandbox: proves the servers are real.

Everything goes through the Python standard library clients, with TLS
verified against the sandbox's per-run CA (hostname checking on).
"""

import base64
import email
import email.policy
import hashlib
import hmac
import imaplib
import os
import poplib
import smtplib
import ssl
import time
import uuid
from email.message import EmailMessage

import pytest

from harness import SPECIAL_USE, Sandbox, _alive


def tls(ca_file):
    """A client context verifying certificates and host names against `ca_file`."""
    ctx = ssl.create_default_context(cafile=ca_file)
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    return ctx


def make_message(sender, rcpt, subject, body):
    msg = EmailMessage()
    msg['From'], msg['To'], msg['Subject'] = sender, rcpt, subject
    msg['Message-ID'] = '<%s@example.org>' % uuid.uuid4()
    msg.set_content(body)
    return msg


def wait_for(probe, timeout=15.0, interval=0.2):
    """Poll `probe()` until it returns something truthy (Postfix is async)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def imap_login(sb, user, implicit_tls=False):
    if implicit_tls:
        imap = imaplib.IMAP4_SSL(sb.host, sb.ports['imaps'], ssl_context=tls(sb.ca_file),
                                 timeout=10)
    else:
        imap = imaplib.IMAP4(sb.host, sb.ports['imap'], timeout=10)
        assert 'STARTTLS' in imap.capabilities
        imap.starttls(tls(sb.ca_file))
    imap.login(user, sb.users[user])
    return imap


def imap_messages(imap, mailbox='INBOX'):
    """All messages of `mailbox`, parsed."""
    typ, _ = imap.select('"%s"' % mailbox, readonly=True)
    assert typ == 'OK', mailbox
    typ, data = imap.uid('SEARCH', 'ALL')
    if not data[0]:
        return []
    typ, data = imap.uid('FETCH', b','.join(data[0].split()).decode(), '(BODY.PEEK[])')
    assert typ == 'OK'
    return [email.message_from_bytes(part[1], policy=email.policy.default)
            for part in data if isinstance(part, tuple)]


def subjects_in(sb, user, mailbox='INBOX', implicit_tls=False):
    imap = imap_login(sb, user, implicit_tls)
    try:
        return {m['Subject']: m for m in imap_messages(imap, mailbox)}
    finally:
        imap.logout()


def pop3_messages(sb, user, implicit_tls=False):
    if implicit_tls:
        pop = poplib.POP3_SSL(sb.host, sb.ports['pop3s'], context=tls(sb.ca_file), timeout=10)
    else:
        pop = poplib.POP3(sb.host, sb.ports['pop3'], timeout=10)
        assert 'STLS' in pop.capa()
        pop.stls(tls(sb.ca_file))
    try:
        pop.user(user)
        pop.pass_(sb.users[user])
        count = len(pop.list()[1])
        return {m['Subject']: m for m in (
            email.message_from_bytes(b'\r\n'.join(pop.retr(i)[1]), policy=email.policy.default)
            for i in range(1, count + 1))}
    finally:
        pop.quit()


def submit(sb, msg, implicit_tls=False, user='alice@example.org'):
    """Send `msg` through Postfix with AUTH, via STARTTLS or implicit TLS."""
    if implicit_tls:
        smtp = smtplib.SMTP_SSL(sb.host, sb.ports['smtps'], context=tls(sb.ca_file), timeout=10)
    else:
        smtp = smtplib.SMTP(sb.host, sb.ports['submission'], timeout=10)
        smtp.starttls(context=tls(sb.ca_file))
    with smtp:
        smtp.login(user, sb.users[user])
        assert smtp.send_message(msg) == {}


def test_submission_reaches_imap_and_pop3(sandbox):
    sb = sandbox
    tag = uuid.uuid4().hex
    sent = {
        'via submission+STARTTLS ' + tag: 'body one %s\n' % tag,
        'via implicit TLS ' + tag: 'body two %s\n' % tag,
    }
    for (subject, body), implicit in zip(sent.items(), (False, True)):
        submit(sb, make_message('alice@example.org', 'bob@example.org', subject, body),
               implicit_tls=implicit)

    arrived = wait_for(lambda: sent.keys() <= subjects_in(sb, 'bob@example.org').keys())
    assert arrived, 'submitted mail not in bob\'s INBOX within 15 s\n' + open(sb.postfix_log).read()

    readers = {
        'IMAP STARTTLS': lambda: subjects_in(sb, 'bob@example.org'),
        'IMAPS': lambda: subjects_in(sb, 'bob@example.org', implicit_tls=True),
        'POP3 STLS': lambda: pop3_messages(sb, 'bob@example.org'),
        'POP3S': lambda: pop3_messages(sb, 'bob@example.org', implicit_tls=True),
    }
    for how, read in readers.items():
        got = read()
        for subject, body in sent.items():
            assert subject in got, how
            assert got[subject].get_content().replace('\r\n', '\n').strip() == body.strip(), how
            assert got[subject]['From'] == 'alice@example.org', how
    # Nothing for alice herself.
    assert not sent.keys() & subjects_in(sb, 'alice@example.org').keys()


def test_unauthenticated_submission_refused(sandbox):
    sb = sandbox
    subject = 'must not arrive ' + uuid.uuid4().hex
    msg = make_message('alice@example.org', 'bob@example.org', subject, 'nope\n')

    with smtplib.SMTP(sb.host, sb.ports['submission'], timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.has_extn('starttls')
        assert not smtp.has_extn('auth')          # smtpd_tls_auth_only
        code, _ = smtp.mail('alice@example.org')  # TLS is mandatory
        assert code == 530
        smtp.starttls(context=tls(sb.ca_file))
        smtp.ehlo()
        assert 'PLAIN' in smtp.esmtp_features['auth'].upper()
        code, _ = smtp.mail('alice@example.org')
        if code == 250:
            code, _ = smtp.rcpt('bob@example.org')
        assert 500 <= code < 600
        smtp.rset()
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.send_message(msg)
        assert 500 <= refused.value.recipients['bob@example.org'][0] < 600

    with smtplib.SMTP_SSL(sb.host, sb.ports['smtps'], context=tls(sb.ca_file),
                          timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.send_message(msg)
        assert 500 <= refused.value.recipients['bob@example.org'][0] < 600

    # A marker sent afterwards with AUTH arrives; the refused message never does.
    marker = 'marker ' + uuid.uuid4().hex
    submit(sb, make_message('alice@example.org', 'bob@example.org', marker, 'ok\n'))
    got = wait_for(lambda: (lambda s: s if marker in s else None)(subjects_in(sb, 'bob@example.org')))
    assert got and subject not in got
    assert 'NOQUEUE: reject' in open(sb.postfix_log).read()


def test_wrong_ca_rejected(sandbox):
    sb = sandbox
    wrong = tls(sb.other_ca_file)
    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL(sb.host, sb.ports['imaps'], ssl_context=wrong, timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError):
        poplib.POP3_SSL(sb.host, sb.ports['pop3s'], context=wrong, timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError):
        smtplib.SMTP_SSL(sb.host, sb.ports['smtps'], context=wrong, timeout=10)
    imap = imaplib.IMAP4(sb.host, sb.ports['imap'], timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError):
        imap.starttls(wrong)


def test_certificate_names(sandbox):
    sb = sandbox
    # DNS:localhost is in the certificate...
    with imaplib.IMAP4_SSL('localhost', sb.ports['imaps'], ssl_context=tls(sb.ca_file),
                           timeout=10) as imap:
        imap.login('alice@example.org', sb.users['alice@example.org'])
    # ...127.0.0.2 is not, although the servers listen there too.
    with pytest.raises(ssl.SSLCertVerificationError, match='mismatch|match'):
        imaplib.IMAP4_SSL(sb.wrong_host, sb.ports['imaps'], ssl_context=tls(sb.ca_file),
                          timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError):
        smtplib.SMTP_SSL(sb.wrong_host, sb.ports['smtps'], context=tls(sb.ca_file), timeout=10)


def test_doveadm_save_visible_in_folder(sandbox):
    sb = sandbox
    folder = 'Projects/Tegami'
    subject = 'saved ' + uuid.uuid4().hex
    sb.save('carol@example.org', folder,
            make_message('dave@example.net', 'carol@example.org', subject, 'hi\n').as_bytes())
    got = subjects_in(sb, 'carol@example.org', folder)
    assert subject in got
    assert subject not in subjects_in(sb, 'carol@example.org')      # not in INBOX
    assert folder in sb.doveadm('mailbox', 'list', '-u', 'carol@example.org')


def test_special_use_folders(sandbox):
    sb = sandbox
    imap = imap_login(sb, 'alice@example.org')
    try:
        assert b'SPECIAL-USE' in imap.capability()[1][0].split()   # post-login list
        typ, lines = imap.list('""', '"*" RETURN (SPECIAL-USE)')
        assert typ == 'OK'
        listing = b'\n'.join(lines).decode()
        for name, flag in SPECIAL_USE.items():
            line = next((ln for ln in listing.splitlines() if ln.rstrip('"').endswith(name)), '')
            assert flag in line, (name, listing)
        typ, subscribed = imap.lsub('""', '*')
        assert all(name.encode() in b'\n'.join(subscribed) for name in SPECIAL_USE)
    finally:
        imap.logout()


def test_lmtp_deliver_and_maildir_seed(sandbox):
    sb = sandbox
    subject = 'lmtp ' + uuid.uuid4().hex
    sb.deliver('carol@example.org',
               make_message('x@example.net', 'carol@example.org', subject, 'lmtp\n').as_bytes())
    assert subject in subjects_in(sb, 'carol@example.org')   # synchronous

    messages = [make_message('x@example.net', 'carol@example.org', 'seed %d' % i,
                             'seeded\n').as_bytes() for i in range(50)]
    assert sb.seed_maildir('carol@example.org', 'Bulk', messages, flags='S') == 50
    imap = imap_login(sb, 'carol@example.org')
    try:
        typ, data = imap.status('Bulk', '(MESSAGES UNSEEN)')
        assert typ == 'OK' and b'MESSAGES 50' in data[0] and b'UNSEEN 0' in data[0]
        assert {'seed 0', 'seed 49'} <= {m['Subject'] for m in imap_messages(imap, 'Bulk')}
    finally:
        imap.logout()


class Scram:
    """Client side of SASL SCRAM (RFC 5802), as an imaplib authobject."""

    def __init__(self, user, password, hash_name):
        self.user, self.password, self.hash = user, password.encode(), hash_name
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.step, self.verified = 0, False

    def __call__(self, challenge):
        self.step += 1
        if self.step == 1:
            self.first_bare = 'n=%s,r=%s' % (self.user, self.nonce)
            return ('n,,' + self.first_bare).encode()
        if self.step == 2:
            server_first = challenge.decode()
            attrs = dict(kv.split('=', 1) for kv in server_first.split(','))
            assert attrs['r'].startswith(self.nonce)
            salted = hashlib.pbkdf2_hmac(self.hash, self.password,
                                         base64.b64decode(attrs['s']), int(attrs['i']))
            client_key = hmac.new(salted, b'Client Key', self.hash).digest()
            final_bare = 'c=biws,r=' + attrs['r']
            auth_msg = ','.join((self.first_bare, server_first, final_bare)).encode()
            signature = hmac.new(hashlib.new(self.hash, client_key).digest(), auth_msg,
                                 self.hash).digest()
            proof = bytes(a ^ b for a, b in zip(client_key, signature))
            server_key = hmac.new(salted, b'Server Key', self.hash).digest()
            self.server_sig = hmac.new(server_key, auth_msg, self.hash).digest()
            return (final_bare + ',p=' + base64.b64encode(proof).decode()).encode()
        self.verified = challenge == b'v=' + base64.b64encode(self.server_sig)
        return b''


@pytest.mark.parametrize('mech,hash_name', [('SCRAM-SHA-256', 'sha256'),
                                            ('SCRAM-SHA-1', 'sha1')])
def test_scram_login(sandbox, mech, hash_name):
    sb = sandbox
    with imaplib.IMAP4_SSL(sb.host, sb.ports['imaps'], ssl_context=tls(sb.ca_file),
                           timeout=10) as imap:
        assert 'AUTH=' + mech in imap.capabilities
        scram = Scram('bob@example.org', sb.users['bob@example.org'], hash_name)
        typ, _ = imap.authenticate(mech, scram)
        assert typ == 'OK' and scram.verified
        assert imap.select('INBOX')[0] == 'OK'
    with imaplib.IMAP4_SSL(sb.host, sb.ports['imaps'], ssl_context=tls(sb.ca_file),
                           timeout=10) as imap:
        with pytest.raises(imaplib.IMAP4.error):
            imap.authenticate(mech, Scram('bob@example.org', 'wrong', hash_name))


def test_second_sandbox_runs_alongside(sandbox):
    other = Sandbox().start()
    try:
        assert not set(other.ports.values()) & set(sandbox.ports.values())
        assert subjects_in(other, 'alice@example.org') == {}
        masters = list(other._masters.values())
        assert all(map(_alive, masters))
    finally:
        other.stop()
        other.stop()                     # idempotent
    assert not any(map(_alive, masters)) and not os.path.exists(other.dir)
    assert subjects_in(sandbox, 'alice@example.org') is not None   # first one unharmed
