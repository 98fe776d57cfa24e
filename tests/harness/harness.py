"""Private Dovecot + Postfix mail servers for tegami's integration tests.

A Sandbox runs one Dovecot and one Postfix instance out of a temporary
directory, on free loopback ports picked at runtime (on 127.0.0.1 and on
127.0.0.2, which the certificate does not cover), with a per-run CA.
Nothing is shared between sandboxes except the system user `tegami-mail`
(created on demand when running as root), so tests may run in parallel.

    with Sandbox() as sb:          # or sb = Sandbox().start() ... sb.stop()
        sb.host, sb.ports['imap'|'imaps'|'pop3'|'pop3s'|'submission'|'smtps']
        sb.users                   # {'alice@example.org': 'password', ...}
        sb.ca_file, sb.other_ca_file, sb.cert_file, sb.key_file
        sb.deliver(rcpt, msg)      # LMTP into INBOX
        sb.save(user, folder, msg) # doveadm save into any folder
        sb.seed_maildir(user, folder, messages)   # fast bulk Maildir writes
        sb.doveadm('mailbox', 'list', '-u', user)

Sandbox(quota_kib=N) also loads Dovecot's quota plugins (QUOTA capability,
GETQUOTAROOT) and adds the user QUOTA_USER, whose storage is limited to N KiB;
every other user stays unlimited.

Only the Python standard library is used; servers come from Debian packages.
Non-root: Dovecot runs as the current user; Postfix needs root.
"""

import atexit
import grp
import json
import os
import pwd
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time

DOVECOT = '/usr/sbin/dovecot'
DOVEADM = '/usr/bin/doveadm'
POSTFIX = '/usr/sbin/postfix'
OPENSSL = '/usr/bin/openssl'
DH_FILE = '/usr/share/dovecot/dh.pem'

MAIL_USER = 'tegami-mail'
HOSTS = ('127.0.0.1', '127.0.0.2')   # 127.0.0.2 is NOT in the certificate
PORT_NAMES = ('imap', 'imaps', 'pop3', 'pop3s', 'submission', 'smtps')
USERS = {'alice@example.org': 'password',
         'bob@example.org': 'password',
         'carol@example.org': 'password'}
QUOTA_USER = 'dana@example.org'   # Sandbox(quota_kib=N) only: storage limited to N KiB
GREETINGS = {'imap': b'* OK', 'imaps': b'* OK', 'pop3': b'+OK', 'pop3s': b'+OK',
             'submission': b'220', 'smtps': b'220', 'lmtp': b'220'}
SPECIAL_USE = {'Sent': r'\Sent', 'Drafts': r'\Drafts', 'Trash': r'\Trash',
               'Junk': r'\Junk', 'Archive': r'\Archive'}

# Postfix services we need (Debian's master.cf minus port 25 and the pipes);
# chroot ('n' in the 5th column) is off everywhere so absolute socket paths work.
MASTER_CF = """\
pickup    unix  n - n 60    1 pickup
cleanup   unix  n - n -     0 cleanup
qmgr      unix  n - n 300   1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n -     - trivial-rewrite
bounce    unix  - - n -     0 bounce
defer     unix  - - n -     0 bounce
trace     unix  - - n -     0 bounce
verify    unix  - - n -     1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -     - proxymap
proxywrite unix - - n -     1 proxymap
smtp      unix  - - n -     - smtp
relay     unix  - - n -     - smtp
showq     unix  n - n -     - showq
error     unix  - - n -     - error
retry     unix  - - n -     - error
discard   unix  - - n -     - discard
local     unix  - n n -     - local
virtual   unix  - n n -     - virtual
lmtp      unix  - - n -     - lmtp
anvil     unix  - - n -     1 anvil
scache    unix  - - n -     1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


class SandboxError(RuntimeError):
    """Raised when the sandbox cannot be set up, started or used."""


def _run(argv, input=None, check=True):
    """Run a command, return CompletedProcess; raise SandboxError on failure."""
    proc = subprocess.run(argv, input=input, capture_output=True)
    if check and proc.returncode != 0:
        raise SandboxError('%s failed (rc=%d): %s' % (
            ' '.join(argv), proc.returncode,
            proc.stderr.decode(errors='replace').strip()))
    return proc


def _tail(path, lines=30):
    try:
        with open(path, errors='replace') as f:
            return ''.join(f.readlines()[-lines:])
    except OSError:
        return '(no file)\n'


def _free_ports(count):
    """Pick `count` distinct ports that are free on every address in HOSTS."""
    held, ports = [], []
    while len(ports) < count:
        first = socket.socket()
        first.bind((HOSTS[0], 0))
        port = first.getsockname()[1]
        held.append(first)
        try:
            for host in HOSTS[1:]:
                other = socket.socket()
                held.append(other)
                other.bind((host, port))
        except OSError:
            continue
        ports.append(port)
    for s in held:
        s.close()
    return ports


def _proc(pid):
    """(pid, start time) naming a live process, or None if gone or a zombie.
    The start time guards against pid reuse."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
    except (OSError, IndexError, TypeError):
        return None
    return None if fields[0] == 'Z' else (pid, fields[19])


def _alive(proc):
    return proc is not None and _proc(proc[0]) == proc


def _pid_tree(proc):
    """`proc` and all its live descendants, found through /proc."""
    children = {}
    for entry in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open('/proc/%s/stat' % entry) as f:
                ppid = int(f.read().rsplit(')', 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [proc[0]]
    while todo:
        pid = todo.pop()
        tree.append(_proc(pid))
        todo.extend(children.get(pid, []))
    return [p for p in tree if p]


def _read_pid(path):
    """The live process whose pid is in `path`, or None."""
    try:
        with open(path) as f:
            return _proc(int(f.read().split()[0]))
    except (OSError, ValueError, IndexError):
        return None


def _mail_account():
    """(uid, gid) that owns the mail: tegami-mail as root, else ourselves."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    for attempt in range(50):
        try:
            pw = pwd.getpwnam(MAIL_USER)
            return pw.pw_uid, pw.pw_gid
        except KeyError:
            pass
        # Parallel sandboxes may race here; useradd then fails and we retry.
        _run(['useradd', '--system', '--user-group', '--no-create-home',
              '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin',
              MAIL_USER], check=False)
        time.sleep(0.05 * attempt)
    raise SandboxError('cannot create system user %s' % MAIL_USER)


def make_ca(directory, name):
    """Create a CA (NAME.pem / NAME.key) in `directory`; return the paths."""
    cert, key = (os.path.join(directory, name + ext) for ext in ('.pem', '.key'))
    _run([OPENSSL, 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
          'ec_paramgen_curve:P-256', '-nodes', '-days', '30',
          '-subj', '/CN=tegami sandbox %s' % name, '-keyout', key, '-out', cert,
          '-addext', 'basicConstraints=critical,CA:TRUE',
          '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
    return cert, key


class Sandbox:
    """One private Dovecot + Postfix pair. See the module docstring."""

    def __init__(self, base_dir=None, postfix=None, separator='/',
                 stop_at_exit=True, oauth2=False, quota_kib=None):
        self.is_root = os.geteuid() == 0
        self.with_postfix = self.is_root if postfix is None else postfix
        if self.with_postfix and not self.is_root:
            raise SandboxError('Postfix can only run as root here; '
                               'use Sandbox(postfix=False) or run as root')
        if base_dir and len(os.path.abspath(base_dir)) > 58:
            # DIR/dovecot/run/ + Dovecot's longest socket name must fit in 108 bytes.
            raise SandboxError('base_dir too long for unix socket paths: ' + base_dir)
        self._owns_dir = base_dir is None
        self.dir = os.path.abspath(base_dir or tempfile.mkdtemp(prefix='tegami-sb-'))
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)   # dovecot/postfix users must traverse it
        self.host = HOSTS[0]
        self.wrong_host = HOSTS[1]
        self.users = dict(USERS)
        self.quota_kib = quota_kib
        if quota_kib:
            self.users[QUOTA_USER] = 'password'
        self.separator = separator
        self.ports = {}
        self.start_seconds = None
        self._stop_at_exit = stop_at_exit
        # oauth2=True: Dovecot also takes OAUTHBEARER/XOAUTH2 tokens, checked at a local
        # introspection endpoint (oauth2.py); sb.oauth2.issue(user) makes a token.
        self._want_oauth2, self.oauth2 = oauth2, None
        self._masters = {}        # name -> (pid, start time), see _proc()
        d = lambda *p: os.path.join(self.dir, *p)
        self.tls_dir, self.mail_dir = d('tls'), d('mail')
        self.ca_file, self.other_ca_file = d('tls', 'ca.pem'), d('tls', 'other-ca.pem')
        self.cert_file, self.key_file = d('tls', 'server.pem'), d('tls', 'server.key')
        self.dovecot_dir = d('dovecot')
        self.dovecot_conf = d('dovecot', 'dovecot.conf')
        self.dovecot_run = d('dovecot', 'run')          # dovecot base_dir
        self.dovecot_log = d('dovecot', 'dovecot.log')
        self.lmtp_socket = d('dovecot', 'run', 'lmtp')
        self.auth_socket = d('dovecot', 'run', 'auth-client')
        self.postfix_dir = d('postfix', 'etc')           # postfix config_directory
        self.postfix_queue = d('postfix', 'queue')
        self.postfix_log = d('postfix', 'postfix.log')
        self.postfix_data = d('postfix', 'data')

    # ------------------------------------------------------------------ setup
    def _prepare(self):
        self.mail_uid, self.mail_gid = _mail_account()
        for path in (self.tls_dir, self.dovecot_dir, self.postfix_dir):
            os.makedirs(path, exist_ok=True)
        os.makedirs(self.mail_dir, mode=0o700, exist_ok=True)
        os.chown(self.mail_dir, self.mail_uid, self.mail_gid)
        if not os.path.exists(self.cert_file):
            self._make_certs()
        users_file = os.path.join(self.dovecot_dir, 'users')
        with open(users_file, 'w') as f:
            for user, password in self.users.items():
                extra = ('userdb_quota_rule=*:storage=%dK' % self.quota_kib
                         if user == QUOTA_USER and self.quota_kib else '')
                f.write('%s:{PLAIN}%s::::::%s\n' % (user, password, extra))
        os.chmod(users_file, 0o644)   # read by the unprivileged auth process

    def _make_certs(self):
        ca, ca_key = make_ca(self.tls_dir, 'ca')
        make_ca(self.tls_dir, 'other-ca')   # an unrelated CA for negative tests
        csr, ext = (os.path.join(self.tls_dir, n) for n in ('server.csr', 'server.ext'))
        with open(ext, 'w') as f:
            f.write('subjectAltName = DNS:localhost, IP:127.0.0.1\n'
                    'basicConstraints = critical, CA:FALSE\n'
                    'keyUsage = critical, digitalSignature, keyEncipherment\n'
                    'extendedKeyUsage = serverAuth\n'
                    'subjectKeyIdentifier = hash\n'
                    'authorityKeyIdentifier = keyid\n')
        _run([OPENSSL, 'req', '-new', '-newkey', 'ec', '-pkeyopt',
              'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost',
              '-keyout', self.key_file, '-out', csr])
        _run([OPENSSL, 'x509', '-req', '-in', csr, '-CA', ca, '-CAkey', ca_key,
              '-set_serial', str(int.from_bytes(os.urandom(8), 'big')),
              '-days', '30', '-extfile', ext, '-out', self.cert_file])
        for path in (self.cert_file, self.key_file, self.ca_file, self.other_ca_file):
            os.chmod(path, 0o644)   # throwaway test keys; readable by anyone

    def _oauth2_conf(self):
        """(extra auth_mechanisms, extra passdb) for oauth2=True, else empty."""
        if not self._want_oauth2:
            return '', ''
        if self.oauth2 is None:
            try:
                from . import oauth2 as oauth2_mod
            except ImportError:
                import oauth2 as oauth2_mod
            self.oauth2 = oauth2_mod.IntrospectionServer().start()
        ext = os.path.join(self.dovecot_dir, 'dovecot-oauth2.conf.ext')
        with open(ext, 'w') as f:
            f.write('introspection_mode = post\nintrospection_url = %s\n'
                    'username_attribute = username\nactive_attribute = active\n'
                    'active_value = true\nforce_introspection = yes\n' % self.oauth2.url)
        os.chmod(ext, 0o644)
        return (' oauthbearer xoauth2',
                '\npassdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n'
                '  args = %s\n}\n' % ext)

    def _quota_conf(self):
        """Dovecot's quota plugins for quota_kib; the limit itself is QUOTA_USER's userdb field."""
        if not self.quota_kib:
            return ''
        return ('mail_plugins = $mail_plugins quota\n'
                'protocol imap {\n  mail_plugins = $mail_plugins imap_quota\n}\n'
                'plugin {\n  quota = count:User quota\n  quota_vsizes = yes\n}\n')

    def _write_dovecot_conf(self):
        me, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
        # As non-root: run every service as ourselves and without chroot.
        nonroot = '' if self.is_root else (
            'default_login_user = %s\ndefault_internal_user = %s\n'
            'default_internal_group = %s\nservice auth-worker {\n  user = %s\n}\n'
            % (me, me, group, me))
        chroot = '' if self.is_root else '  chroot =\n'
        mailboxes = ''.join('  mailbox %s {\n    special_use = %s\n    auto = subscribe\n'
                            '  }\n' % kv for kv in SPECIAL_USE.items())
        p = self.ports
        conf = f"""\
# Generated by tests/harness/harness.py -- one private Dovecot instance.
protocols = imap pop3 lmtp
listen = {', '.join(HOSTS)}
base_dir = {self.dovecot_run}
state_dir = {self.dovecot_dir}/state
log_path = {self.dovecot_log}
ssl = yes
ssl_cert = <{self.cert_file}
ssl_key = <{self.key_file}
{'ssl_dh = <' + DH_FILE if os.path.exists(DH_FILE) else ''}
auth_mechanisms = plain login scram-sha-1 scram-sha-256{self._oauth2_conf()[0]}
auth_verbose = yes
auth_failure_delay = 0
mail_location = maildir:~/Maildir
mail_uid = {self.mail_uid}
mail_gid = {self.mail_gid}
first_valid_uid = {self.mail_uid}
first_valid_gid = {self.mail_gid}
mail_max_userip_connections = 100
{nonroot}{self._oauth2_conf()[1]}{self._quota_conf()}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {self.dovecot_dir}/users
}}
userdb {{
  driver = passwd-file
  args = {self.dovecot_dir}/users
  default_fields = uid={self.mail_uid} gid={self.mail_gid} home={self.mail_dir}/%d/%n
}}
namespace inbox {{
  inbox = yes
  separator = {self.separator}
{mailboxes}}}
service imap-login {{
{chroot}  inet_listener imap {{
    port = {p['imap']}
  }}
  inet_listener imaps {{
    port = {p['imaps']}
    ssl = yes
  }}
}}
service pop3-login {{
{chroot}  inet_listener pop3 {{
    port = {p['pop3']}
  }}
  inet_listener pop3s {{
    port = {p['pop3s']}
    ssl = yes
  }}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
service auth {{
  unix_listener auth-client {{
    mode = 0666
  }}
}}
service anvil {{
{chroot}  # No growing delays after failed logins: tests fail logins on purpose.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""
        with open(self.dovecot_conf, 'w') as f:
            f.write(conf)

    def _write_postfix_conf(self):
        pf = self.postfix_dir
        with open(os.path.join(pf, 'vmailbox'), 'w') as f:
            f.writelines('%s ok\n' % user for user in self.users)
        main = {
            'compatibility_level': '3.6',
            'queue_directory': self.postfix_queue,
            'data_directory': self.postfix_data,
            'maillog_file': self.postfix_log,
            'maillog_file_prefixes': self.dir,
            'myhostname': 'localhost', 'mydomain': 'localdomain',
            'mydestination': '', 'alias_maps': '', 'alias_database': '',
            'inet_interfaces': 'loopback-only', 'inet_protocols': 'ipv4',
            'mynetworks': '127.0.0.1/32', 'biff': 'no',
            'smtpd_banner': '$myhostname ESMTP tegami-sandbox',
            'virtual_mailbox_domains': 'example.org',
            'virtual_mailbox_maps': 'texthash:%s/vmailbox' % pf,
            'virtual_transport': 'lmtp:unix:' + self.lmtp_socket,
            'smtpd_tls_cert_file': self.cert_file,
            'smtpd_tls_key_file': self.key_file,
            'smtpd_sasl_type': 'dovecot',
            'smtpd_sasl_path': self.auth_socket,
            'smtpd_relay_restrictions': 'permit_sasl_authenticated, reject',
            'smtpd_recipient_restrictions': 'permit_sasl_authenticated, reject',
            'smtpd_peername_lookup': 'no',
            'smtpd_error_sleep_time': '0s',
            'message_size_limit': '52428800',
            # Retry quickly if a delivery to Dovecot is ever deferred.
            'queue_run_delay': '1s', 'minimal_backoff_time': '1s',
            'maximal_backoff_time': '2s',
        }
        with open(os.path.join(pf, 'main.cf'), 'w') as f:
            f.write('# Generated by tests/harness/harness.py\n')
            f.writelines('%s = %s\n' % kv for kv in main.items())
        listeners = ''
        for host in HOSTS:
            listeners += (
                '%s:%d inet n - n - - smtpd\n  -o syslog_name=postfix/submission\n'
                '  -o smtpd_tls_security_level=encrypt\n  -o smtpd_sasl_auth_enable=yes\n'
                '  -o smtpd_tls_auth_only=yes\n' % (host, self.ports['submission']))
            listeners += (
                '%s:%d inet n - n - - smtpd\n  -o syslog_name=postfix/smtps\n'
                '  -o smtpd_tls_wrappermode=yes\n  -o smtpd_tls_security_level=encrypt\n'
                '  -o smtpd_sasl_auth_enable=yes\n' % (host, self.ports['smtps']))
        with open(os.path.join(pf, 'master.cf'), 'w') as f:
            f.write(MASTER_CF + listeners)
        # Postfix refuses to read a file modified in the last couple of
        # seconds (it may be mid-edit) and sleeps meanwhile: backdate them.
        past = time.time() - 60
        for name in ('main.cf', 'master.cf', 'vmailbox'):
            os.utime(os.path.join(pf, name), (past, past))
        self._make_postfix_queue()

    def _make_postfix_queue(self):
        # What `postfix start` would create from postfix-files on its first
        # run; doing it here and touching `quick-start` skips the integrity
        # checks that made the first start take ~2 s.
        if os.path.isdir(self.postfix_data):
            return
        owner = pwd.getpwnam('postfix')
        postdrop = grp.getgrnam('postdrop').gr_gid
        layout = [(self.postfix_queue, 0o755, 0, 0), (self.postfix_data, 0o700,) + owner[2:4],
                  (self.postfix_queue + '/pid', 0o755, 0, 0),
                  (self.postfix_queue + '/maildrop', 0o730, owner.pw_uid, postdrop),
                  (self.postfix_queue + '/public', 0o710, owner.pw_uid, postdrop)]
        layout += [(self.postfix_queue + '/' + sub, 0o700) + owner[2:4]
                   for sub in ('active', 'bounce', 'corrupt', 'defer', 'deferred', 'flush',
                               'hold', 'incoming', 'private', 'saved', 'trace')]
        for path, mode, uid, gid in layout:
            os.makedirs(path, exist_ok=True)
            os.chown(path, uid, gid)
            os.chmod(path, mode)
        open(self.postfix_queue + '/quick-start', 'w').close()

    # -------------------------------------------------------------- lifecycle
    def start(self, timeout=10):
        """Start Dovecot (and Postfix); return once every service greets."""
        t0 = time.monotonic()
        if any(map(_read_pid, self._pidfiles().values())):
            raise SandboxError('a sandbox is already running in %s' % self.dir)
        self._prepare()
        for attempt in range(3):
            # Ports are free when picked but may be grabbed by someone else
            # before the servers bind them: retry with new ports then.
            self.ports = dict(zip(PORT_NAMES, _free_ports(len(PORT_NAMES))))
            if not self.with_postfix:
                del self.ports['submission'], self.ports['smtps']
            try:
                self._launch(timeout)
                break
            except SandboxError as e:
                self._shutdown()
                if attempt == 2 or 'Address already in use' not in str(e):
                    raise
        if self._stop_at_exit:
            atexit.register(self.stop)
        self.start_seconds = time.monotonic() - t0
        return self

    def _launch(self, timeout):
        self._write_dovecot_conf()
        commands = [('dovecot', [DOVECOT, '-c', self.dovecot_conf])]
        if self.with_postfix:
            self._write_postfix_conf()
            commands.append(('postfix', [POSTFIX, '-c', self.postfix_dir, 'start']))
        # Start both at once; output goes to files (never pipes: the daemons
        # would inherit them), in a new session so ^C in a test run spares them.
        procs = []
        for name, argv in commands:
            with open(os.path.join(self.dir, name + '-start.out'), 'wb') as out:
                procs.append((name, subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                    start_new_session=True)))
        for name, proc in procs:
            try:
                if proc.wait(timeout) != 0:
                    self._fail('%s exited with %d' % (name, proc.returncode))
            except subprocess.TimeoutExpired:
                self._fail('%s start did not return within %ss' % (name, timeout))
        # Ready means: every service greets us, on both addresses.
        deadline = time.monotonic() + timeout
        waiting = [(name, host) for host in HOSTS for name in self.ports]
        waiting.append(('lmtp', None))
        while waiting:
            if self._greets(*waiting[0]):
                waiting.pop(0)
            elif time.monotonic() > deadline:
                self._fail('%s on %s not ready after %ss' % (waiting[0] + (timeout,)))
            else:
                time.sleep(0.02)
        self._masters = {name: _read_pid(path) for name, path in self._pidfiles().items()}

    def _greets(self, name, host):
        """True if service `name` sends its greeting (over TLS, verified
        against our CA, for the implicit-TLS ports)."""
        try:
            if host is None:
                sock = socket.socket(socket.AF_UNIX)
                sock.settimeout(2)
                sock.connect(self.lmtp_socket)
            else:
                sock = socket.create_connection((host, self.ports[name]), timeout=2)
            with sock:
                if name in ('imaps', 'pop3s', 'smtps'):
                    ctx = ssl.create_default_context(cafile=self.ca_file)
                    ctx.check_hostname = False   # 127.0.0.2 is not in the cert
                    with ctx.wrap_socket(sock) as tls:
                        return tls.recv(64).startswith(GREETINGS[name])
                return sock.recv(64).startswith(GREETINGS[name])
        except OSError:
            return False

    def _fail(self, what):
        def out(name):
            return _tail(os.path.join(self.dir, name + '-start.out'), 10)
        raise SandboxError(
            'sandbox in %s failed to start: %s\n--- dovecot start output:\n%s'
            '--- dovecot log:\n%s--- postfix start output:\n%s--- postfix log:\n%s'
            % (self.dir, what, out('dovecot'), _tail(self.dovecot_log),
               out('postfix'), _tail(self.postfix_log)))

    def _pidfiles(self):
        return {'postfix': self.postfix_queue + '/pid/master.pid',
                'dovecot': self.dovecot_run + '/master.pid'}

    def _shutdown(self, grace=2):
        """Stop whatever runs from this directory and wait until it is gone."""
        masters = {}
        for name, pidfile in self._pidfiles().items():
            # The pid recorded at start still works if the directory is gone.
            proc = _read_pid(pidfile) or self._masters.get(name)
            if _alive(proc):
                masters[name] = proc
        doomed = set(p for m in masters.values() for p in _pid_tree(m))
        stopper = None
        if 'postfix' in masters:
            if os.path.exists(self.postfix_dir + '/main.cf'):
                # Runs in parallel with Dovecot's shutdown: it polls once a second.
                stopper = subprocess.Popen(
                    [POSTFIX, '-c', self.postfix_dir, 'stop'], stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            else:
                os.kill(masters['postfix'][0], signal.SIGTERM)
        if 'dovecot' in masters:
            # SIGTERM to the master is exactly what `doveadm stop` does, but
            # doveadm then waits until the pid disappears, i.e. until PID 1
            # has reaped the zombie -- seconds with this machine's init.
            os.kill(masters['dovecot'][0], signal.SIGTERM)
        # Normally all is gone after ~1.1 s (Dovecot's master gives its log
        # process a second). Stragglers -- e.g. a process started just before
        # the stop, waiting 5 s for a handshake with the already-gone stats
        # service, which also holds up Dovecot's master -- get SIGKILL.
        doomed.update(masters.values())
        deadline = time.monotonic() + grace
        while any(map(_alive, doomed)):
            if time.monotonic() > deadline:
                for pid, _ in filter(_alive, doomed):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            time.sleep(0.02)
        if stopper:
            stopper.wait()
        self._masters = {}

    def stop(self, keep=None):
        """Stop both servers (idempotent). The directory is removed when
        keep is False, or when keep is None and the Sandbox created it; set
        TEGAMI_KEEP_SANDBOX=1 to always keep it for post-mortems."""
        atexit.unregister(self.stop)
        self._shutdown()
        if self.oauth2:
            self.oauth2.stop()
            self.oauth2 = None
        if keep is None:
            keep = not self._owns_dir or os.environ.get('TEGAMI_KEEP_SANDBOX') == '1'
        if not keep and os.path.isdir(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---------------------------------------------------------------- helpers
    def doveadm(self, *args, input=None):
        """Run `doveadm -c CONF ARGS...` and return its stdout as text."""
        return _run([DOVEADM, '-c', self.dovecot_conf] + list(args),
                    input=input).stdout.decode(errors='replace')

    def create_mailbox(self, user, folder):
        """Create `folder` for `user` unless it exists already."""
        proc = _run([DOVEADM, '-c', self.dovecot_conf, 'mailbox', 'create',
                     '-u', user, folder], check=False)
        if proc.returncode != 0 and b'already exists' not in proc.stderr:
            raise SandboxError('doveadm mailbox create %s %s: %s'
                               % (user, folder, proc.stderr.decode().strip()))

    def save(self, user, folder, msg_bytes):
        """Store one message in `folder` of `user` via doveadm save."""
        if folder.upper() != 'INBOX':
            self.create_mailbox(user, folder)
        self.doveadm('save', '-u', user, '-m', folder, input=msg_bytes)

    def deliver(self, rcpt, msg_bytes, sender='harness@example.org'):
        """Deliver one message to `rcpt`'s INBOX through Dovecot LMTP."""
        with smtplib.LMTP(self.lmtp_socket) as lmtp:
            lmtp.sendmail(sender, [rcpt], msg_bytes)

    def maildir_path(self, user, folder='INBOX'):
        """Filesystem path of `folder` (Maildir++ layout) for `user`."""
        local, domain = user.split('@')
        root = os.path.join(self.mail_dir, domain, local, 'Maildir')
        if folder.upper() == 'INBOX':
            return root
        return os.path.join(root, '.' + folder.replace(self.separator, '.'))

    def seed_maildir(self, user, folder, messages, flags=''):
        """Bulk-write `messages` (iterable of bytes) straight into a Maildir
        folder, much faster than IMAP/LMTP; Dovecot picks them up on its next
        sync. `flags` is Maildir info, e.g. 'S' for \\Seen. Returns the count."""
        local, domain = user.split('@')
        root = self.maildir_path(user)
        path = self.maildir_path(user, folder)
        chain = [os.path.join(self.mail_dir, domain), os.path.dirname(root)]
        for d in dict.fromkeys([root, path]):   # INBOX: just the root
            chain += [d] + [os.path.join(d, sub) for sub in ('cur', 'new', 'tmp')]
        for d in chain:
            if not os.path.isdir(d):
                os.mkdir(d, 0o700)
                os.chown(d, self.mail_uid, self.mail_gid)
        if path != root and not os.path.exists(path + '/maildirfolder'):
            open(path + '/maildirfolder', 'w').close()
            os.chown(path + '/maildirfolder', self.mail_uid, self.mail_gid)
        # Unique names: <secs>.M<usecs>P<pid>Q<n>.<random>,S=<size>:2,<flags>
        now, token = time.time(), os.urandom(4).hex()
        prefix = '%d.M%dP%d' % (now, now % 1 * 1e6, os.getpid())
        cur, count = os.path.join(path, 'cur'), 0
        for count, data in enumerate(messages, 1):
            name = '%sQ%d.%s,S=%d:2,%s' % (prefix, count, token, len(data), flags)
            fd = os.open(os.path.join(cur, name),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.fchown(fd, self.mail_uid, self.mail_gid)
                os.write(fd, data)
            finally:
                os.close(fd)
        return count

    # ------------------------------------------------------------ description
    INFO = ('dir', 'host', 'wrong_host', 'ports', 'users', 'ca_file', 'other_ca_file',
            'cert_file', 'key_file', 'lmtp_socket', 'auth_socket', 'dovecot_conf',
            'dovecot_log', 'postfix_dir', 'postfix_log', 'mail_dir', 'separator',
            'mail_uid', 'mail_gid', 'start_seconds')

    def info(self):
        """Everything a client needs to know, as a JSON-able dict."""
        return dict({k: getattr(self, k) for k in self.INFO}, masters=self._masters)

    @classmethod
    def load(cls, base_dir):
        """A Sandbox object for servers started earlier (see sandbox.json)."""
        with open(os.path.join(base_dir, 'sandbox.json')) as f:
            info = json.load(f)
        sb = cls(base_dir, postfix='submission' in info['ports'],
                 separator=info['separator'], stop_at_exit=False)
        sb.ports, sb.users = info['ports'], info['users']
        sb.mail_uid, sb.mail_gid = info['mail_uid'], info['mail_gid']
        sb.start_seconds = info['start_seconds']
        sb._masters = {k: tuple(v) for k, v in info['masters'].items() if v}
        return sb


def synthetic_messages(count, size=2048, rcpt='alice@example.org'):
    """Yield `count` distinct plain-text messages of about `size` bytes."""
    line = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do.\n'
    body = line * max(1, size // len(line))
    for i in range(count):
        date = time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime(1.7e9 + 60 * i))
        yield ('From: Seeder <seeder@example.net>\nTo: <%s>\nSubject: Seed message %d\n'
               'Date: %s\nMessage-ID: <seed-%d.%s@example.net>\n\n%s'
               % (rcpt, i, date, i, os.urandom(6).hex(), body)).encode()
