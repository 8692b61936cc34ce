"""A small HTTP proxy for the proxy tests (HubProxyTests), stdlib only: CONNECT tunnels (what AsyncHTTPClient and
curl use, for http:// addresses too) and absolute-form forwarding (`GET http://host/path`, what requests and
httpx use for http://). --map NAME=IP resolves NAME only here, so an address that works only through the proxy
proves the client went through it. Each request is appended to --log as a JSON line (method, target); the first
line on stdout is the proxy's address.

usage: http_proxy.py [--map NAME=IP …] [--log FILE]
"""
import argparse
import http.client
import json
import select
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    names: dict = {}
    log_path = None
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def record(self, target: str):
        if self.log_path:
            with self.lock, open(self.log_path, "a") as f:
                f.write(json.dumps({"method": self.command, "target": target}) + "\n")

    def address(self, host: str, port: int):
        return self.names.get(host.lower(), host), port

    def do_CONNECT(self):
        self.record(self.path)
        host, _, port = self.path.rpartition(":")
        try:
            upstream = socket.create_connection(self.address(host.strip("[]"), int(port)), timeout=10)
        except OSError as error:
            self.send_error(502, f"cannot reach {self.path}: {error}")
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        sockets = [self.connection, upstream]
        try:
            while True:
                ready, _, _ = select.select(sockets, [], [], 60)
                if not ready:
                    break
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is self.connection else self.connection).sendall(data)
        except OSError:
            pass
        finally:
            upstream.close()

    def forward(self):
        self.record(self.path)
        url = urlsplit(self.path)
        if url.scheme != "http" or not url.hostname:
            self.send_error(400, "absolute http:// address expected")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        connection = http.client.HTTPConnection(*self.address(url.hostname, url.port or 80), timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "proxy-authorization")}
        connection.request(self.command, url.path + (f"?{url.query}" if url.query else ""), body or None, headers)
        response = connection.getresponse()
        self.send_response(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() not in ("connection", "keep-alive", "transfer-encoding"):
                self.send_header(key, value)
        data = b"" if self.command == "HEAD" else response.read()
        if response.getheader("Content-Length") is None:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        connection.close()

    do_GET = do_HEAD = do_POST = forward


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--map", action="append", default=[])
    parser.add_argument("--log")
    options = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    Proxy.names = {name.lower(): ip for name, ip in (spec.split("=", 1) for spec in options.map)}
    Proxy.log_path = options.log
    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    server.daemon_threads = True
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
