"""A loopback TCP proxy in front of the real server that can cut every
connection it carries, for the generated clients' stream tests: a cut is
what a dropped network looks like to the client (a reset, no close frame),
while the server keeps running and its event log keeps growing.

    proxy = CutProxy(server.port)      # clients talk to proxy.url
    proxy.cut()                        # reset every connection carried now
    proxy.accepted                     # connections accepted so far
    control = proxy.serve_control()    # POST {control}/cut does the same, for
                                       # a client test in another process
    proxy.close()

Only the standard library; bounded: every socket has a timeout and the
threads are daemons that end when their sockets close.
"""
import http.server
import json
import socket
import struct
import threading

IO_TIMEOUT_S = 60.0


class CutProxy:
    def __init__(self, target_port):
        self.target_port = target_port
        self.lock = threading.Lock()
        self.pairs = []
        self.accepted = 0
        self.cuts = 0
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.control = None
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def _accept(self):
        while True:
            try:
                down, _ = self.listener.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(("127.0.0.1", self.target_port), timeout=IO_TIMEOUT_S)
            except OSError:
                down.close()
                continue
            down.settimeout(IO_TIMEOUT_S)
            with self.lock:
                self.accepted += 1
                self.pairs.append((down, up))
            threading.Thread(target=self._pump, args=(down, up), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, down), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        """Reset every connection carried now (RST to both sides); returns
        how many were cut."""
        with self.lock:
            pairs, self.pairs = self.pairs, []
            self.cuts += 1
        for pair in pairs:
            for s in pair:
                try:
                    # Linger 0: close resets instead of finishing politely;
                    # shutdown first wakes the pump threads blocked on it.
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
        return len(pairs)

    def serve_control(self):
        """Start the control endpoint; returns its base URL."""
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                if self.path != "/cut":
                    self.send_error(404)
                    return
                body = json.dumps({"cut": proxy.cut(), "accepted": proxy.accepted}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.control = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.control.daemon_threads = True
        threading.Thread(target=self.control.serve_forever, daemon=True).start()
        return "http://127.0.0.1:%d" % self.control.server_address[1]

    def close(self):
        if self.closed:
            return
        self.closed = True
        if self.control is not None:
            self.control.shutdown()
            self.control.server_close()
        self.listener.close()
        self.cut()
