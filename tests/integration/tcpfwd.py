"""A loopback TCP forwarder for the tests: a server that is "down" (its port
refuses connections) until open(), then passes bytes both ways to the real
server on target -- optionally with one fault (see Fault): the connection cut
at a chosen byte offset in either direction, a stall, or a delay. The proof
suite (tests/proof) arms a new fault for every trial with arm()."""
import socket
import struct
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Fault:
    """One fault, fired once in the life of an arm(): when byte number `at`
    (0-based, counted over every connection since arm()) would cross the proxy
    in `direction` ("up": client to server, "down": server to client):
      kind "cut"   -- the bytes before it are forwarded, then both sockets of
                      that connection close (with a TCP RST when `rst`, else FIN);
      kind "stall" -- forwarding in that direction pauses for `seconds`;
      kind "delay" -- from there on, every chunk in that direction waits `seconds`.
    Connections made after a cut pass through untouched."""

    def __init__(self, kind, direction, at, seconds=0.0, rst=False):
        assert kind in ("cut", "stall", "delay") and direction in ("up", "down")
        self.kind, self.direction, self.at, self.seconds, self.rst = kind, direction, at, seconds, rst

    def __repr__(self):
        extra = " %.2fs" % self.seconds if self.kind != "cut" else (" rst" if self.rst else " fin")
        return "%s %s@%d%s" % (self.kind, self.direction, self.at, extra)


class Forwarder:
    """A loopback TCP port that refuses connections until open(), then forwards to target.
    `bytes` counts what crossed each way since the last arm(); `fired` says whether the armed
    fault happened; `connections` counts the connections accepted since arm()."""

    def __init__(self, target, fault=None):
        self.target, self.port, self.sock = target, free_port(), None
        self.lock = threading.Lock()
        self.arm(fault)

    def arm(self, fault=None):
        """Forget the counts and the last fault; `fault` (a Fault or None) applies from now on."""
        with self.lock:
            self.fault, self.fired = fault, False
            self.bytes = {"up": 0, "down": 0}
            self.connections = 0

    def open(self):
        self.sock = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                s = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                c.close()
                continue
            with self.lock:
                self.connections += 1
            pair = (c, s)
            for a, b, direction in ((c, s, "up"), (s, c, "down")):
                threading.Thread(target=self._pipe, args=(a, b, direction, pair), daemon=True).start()

    def _plan(self, direction, n):
        """How the next n bytes in `direction` go: (bytes to forward first, action or None)."""
        with self.lock:
            f, start = self.fault, self.bytes[direction]
            if f is None or f.direction != direction:
                self.bytes[direction] += n
                return n, None
            if f.kind == "delay" and start + n > f.at:
                self.fired = True
                self.bytes[direction] += n
                return n, "delay"
            if self.fired or start + n <= f.at:
                self.bytes[direction] += n
                return n, None
            self.fired = True
            self.bytes[direction] = f.at
            return f.at - start, f.kind

    def _pipe(self, a, b, direction, pair):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                first, action = self._plan(direction, len(data))
                if action == "delay":
                    time.sleep(self.fault.seconds)
                b.sendall(data[:first])
                if action == "cut":
                    self._cut(pair, self.fault.rst)
                    return
                if action == "stall":
                    time.sleep(self.fault.seconds)
                    with self.lock:
                        self.bytes[direction] += len(data) - first
                    b.sendall(data[first:])
        except OSError:
            pass
        finally:
            for x in (a, b):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    @staticmethod
    def _cut(pair, rst):
        for x in pair:
            try:
                if rst:  # linger 0: the last close sends RST instead of FIN
                    x.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                # SHUT_RD wakes the other direction's thread blocked in recv() on x (it holds
                # the socket open until then); SHUT_WR would send a FIN.
                x.shutdown(socket.SHUT_RD if rst else socket.SHUT_RDWR)
                x.close()
            except OSError:
                pass

    def close(self):
        if self.sock:
            self.sock.close()
