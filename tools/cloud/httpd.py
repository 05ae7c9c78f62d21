"""A tiny HTTP/1.0 server that never blocks its caller: poll() does what the
sockets allow right now and returns.

Host-only (CPython). The node runtime calls poll(0) once per turn of the
node loop, so a slow or stuck scraper costs the node nothing: a request is
read and a response written only as far as the socket takes it without
waiting. GET only; one request per connection (Connection: close), which
is what Prometheus and kubelet probes do without trouble. Bounded: at most
MAX_CONNS open connections (the oldest is dropped beyond), MAX_REQUEST
bytes per request, and a connection idle for IDLE_S is closed.
"""
import select
import socket
import time

MAX_CONNS = 16
MAX_REQUEST = 8192
IDLE_S = 5.0

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            503: "Service Unavailable"}


class _Conn:
    __slots__ = ("sock", "rx", "tx", "t")

    def __init__(self, sock, now):
        self.sock = sock
        self.rx = b""
        self.tx = None  # bytes once the response is ready
        self.t = now


class HttpServer:
    """handler(path) -> (status, content type, body bytes)."""

    def __init__(self, host, port, handler):
        self.handler = handler
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(16)
        s.setblocking(False)
        self.sock = s
        self.port = s.getsockname()[1]
        self.conns = []
        self.served = 0

    def fileno(self):
        return self.sock.fileno()

    def close(self):
        for c in self.conns:
            c.sock.close()
        self.conns = []
        self.sock.close()

    def poll(self, timeout=0.0):
        """Accept, read, answer and write what is possible within timeout (s)."""
        rl = [self.sock] + [c.sock for c in self.conns if c.tx is None]
        wl = [c.sock for c in self.conns if c.tx is not None]
        try:
            r, w, _ = select.select(rl, wl, [], timeout)
        except (OSError, ValueError):
            r, w = [], []
        now = time.monotonic()
        if self.sock in r:
            self._accept(now)
        for c in list(self.conns):
            if c.sock in r:
                self._read(c, now)
            elif c.sock in w:
                self._write(c, now)
            elif now - c.t > IDLE_S:
                self._drop(c)

    def _accept(self, now):
        for _ in range(MAX_CONNS):
            try:
                s, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            s.setblocking(False)
            if len(self.conns) >= MAX_CONNS:
                self._drop(self.conns[0])
            self.conns.append(_Conn(s, now))

    def _drop(self, c):
        try:
            c.sock.close()
        except OSError:
            pass
        if c in self.conns:
            self.conns.remove(c)

    def _read(self, c, now):
        try:
            data = c.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(c)
            return
        if not data:
            self._drop(c)
            return
        c.rx += data
        c.t = now
        end = c.rx.find(b"\r\n\r\n")
        if end < 0:
            end = c.rx.find(b"\n\n")
        if end < 0:
            if len(c.rx) > MAX_REQUEST:
                c.tx = _response(400, "text/plain", b"request too large\n")
            return
        c.tx = self._answer(c.rx[:end])
        self._write(c, now)

    def _answer(self, head):
        line = head.split(b"\n", 1)[0].strip().split()
        if len(line) < 2:
            return _response(400, "text/plain", b"bad request line\n")
        if line[0] not in (b"GET", b"HEAD"):
            return _response(405, "text/plain", b"GET only\n")
        path = line[1].split(b"?", 1)[0].decode("latin-1")
        try:
            status, ctype, body = self.handler(path)
        except Exception as e:  # a handler bug answers 503, never kills the node
            status, ctype, body = 503, "text/plain", ("handler error: %s\n" % e).encode()
        self.served += 1
        if line[0] == b"HEAD":
            return _response(status, ctype, b"", len(body))
        return _response(status, ctype, body)

    def _write(self, c, now):
        try:
            n = c.sock.send(c.tx)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(c)
            return
        c.tx = c.tx[n:]
        c.t = now
        if not c.tx:
            self._drop(c)


def _response(status, ctype, body, length=None):
    head = "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (
        status, _REASONS.get(status, "Error"), ctype, len(body) if length is None else length)
    return head.encode() + body


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
