"""A tiny OAuth 2 token introspection endpoint (RFC 7662) for the sandbox.

Dovecot's oauth2 passdb (introspection_mode = post) sends `token=...` here;
the answer says whether the token is active and whose it is. Tokens are
issued by the test itself (issue()) and can be revoked to simulate expiry.
Standard library only; one daemon thread per server.

    srv = IntrospectionServer().start()
    token = srv.issue('alice@example.org')
    srv.url  -> 'http://127.0.0.1:PORT/introspect'
"""

import http.server
import json
import secrets
import threading
import urllib.parse


class IntrospectionServer:
    """Answers POST /introspect (form field `token`) and GET with a Bearer header."""

    def __init__(self, host='127.0.0.1'):
        self.tokens = {}        # token -> user name
        self.requests = []      # tokens seen, in order (for assertions)
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, token):
                with server._lock:
                    server.requests.append(token)
                    user = server.tokens.get(token)
                body = json.dumps({'active': True, 'username': user} if user
                                  else {'active': False}).encode()
                self.send_response(200)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get('Content-Length') or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                self._answer((form.get('token') or [''])[0])

            def do_GET(self):
                auth = self.headers.get('Authorization', '')
                self._answer(auth[7:] if auth.lower().startswith('bearer ') else '')

            def log_message(self, *args):
                pass

        self._httpd = http.server.ThreadingHTTPServer((host, 0), Handler)
        self._httpd.daemon_threads = True
        self.url = 'http://%s:%d/introspect' % (host, self._httpd.server_address[1])
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def issue(self, user):
        """A new valid access token for `user`."""
        token = 'tok-' + secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[token] = user
        return token

    def revoke(self, token):
        with self._lock:
            self.tokens.pop(token, None)
