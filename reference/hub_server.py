"""A local stand-in for the Hugging Face Hub, for tests that must not touch the internet. It speaks the endpoints
and headers that huggingface_hub (file_download.py, _snapshot_download.py, hf_api.py, utils/_http.py) relies on,
so the real huggingface_hub and Inkwell can both download from it:

  GET  /api/models/{repo}[/revision/{rev}]      model info: sha (the commit), siblings, gated
  GET  /api/models/{repo}/tree/{rev}            the file list (path, size, oid, lfs {oid, size, pointerSize})
  HEAD|GET /{repo}/resolve/{rev}/{path}         a regular file: 200, ETag = its git blob id, X-Repo-Commit;
                                                an LFS file: 302 to an absolute CDN address (localhost: another origin), with X-Linked-Etag
                                                (its SHA-256), X-Linked-Size and X-Repo-Commit
  HEAD|GET /cdn/{sha256}                        the bytes, with Range (206, Content-Range)

Errors as the Hub sends them (X-Error-Code / X-Error-Message): an unknown repo is 401 RepoNotFound, an unknown
revision 404 RevisionNotFound, a missing file 404 EntryNotFound, a gated repo 401 GatedRepo without a token and
403 GatedRepo with a token that was not granted access. A renamed repo (--alias) answers 307 with a relative
Location, as the Hub does. Faults for the tests: --drop-after N closes the connection after N bytes of the first
GET of each LFS blob; --corrupt PATH serves that file's bytes altered, once; --rate B sends LFS bodies at B bytes
a second. --cdn-host NAME puts the CDN at NAME:port instead (for the proxy tests: a name only the proxy
resolves). Every request is appended to --log as a JSON line. The first line on stdout is the address.

usage: hub_server.py --repo org/name=FOLDER [--repo …] [--gated org/name] [--token T] [--denied-token T]
                     [--alias old/name=org/name] [--drop-after N] [--corrupt org/name:PATH] [--rate B]
                     [--cdn-host NAME] [--log FILE]
"""
import argparse
import hashlib
import json
import os
import re
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

# What a Hub repo's .gitattributes sends to LFS (the Hub's default list, for the formats a model repo holds).
LFS_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".h5", ".onnx", ".pkl")


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    def __init__(self, name: str, folder: str, gated: bool):
        self.name, self.gated = name, gated
        self.files = {}  # path -> dict(data, size, lfs_sha256 or None, oid)
        for root, _, names in os.walk(folder):
            for file in names:
                full = os.path.join(root, file)
                path = os.path.relpath(full, folder).replace(os.sep, "/")
                with open(full, "rb") as f:
                    data = f.read()
                entry = {"data": data, "size": len(data), "lfs": None, "oid": git_blob_id(data)}
                if path.endswith(LFS_SUFFIXES):
                    sha = hashlib.sha256(data).hexdigest()
                    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(data)}\n"
                    entry.update(lfs=sha, oid=git_blob_id(pointer.encode()), pointer_size=len(pointer))
                self.files[path] = entry
        listing = "".join(f"{p}:{e['lfs'] or e['oid']}\n" for p, e in sorted(self.files.items()))
        self.commit = hashlib.sha1(listing.encode()).hexdigest()

    def commit_for(self, revision: str):
        return self.commit if revision in ("main", self.commit) else None


class Hub:
    def __init__(self, options):
        self.repos = {}
        for spec in options.repo:
            name, folder = spec.split("=", 1)
            self.repos[name] = Repo(name, folder, name in options.gated)
        self.aliases = dict(spec.split("=", 1) for spec in options.alias)
        self.token, self.denied = options.token, options.denied_token
        self.drop_after = options.drop_after
        self.rate = options.rate
        self.cdn_host = options.cdn_host
        # The SHA-256 of each file named by --corrupt org/name:PATH (an LFS file, served from the CDN).
        self.corrupt = {self.repos[spec.split(":", 1)[0]].files[spec.split(":", 1)[1]]["lfs"] for spec in options.corrupt}
        self.dropped, self.corrupted = set(), set()
        self.blobs = {e["lfs"]: e for r in self.repos.values() for e in r.files.values() if e["lfs"]}
        self.log_path = options.log
        self.lock = threading.Lock()

    def log(self, record: dict):
        if self.log_path:
            with self.lock, open(self.log_path, "a") as f:
                f.write(json.dumps(record) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: Hub

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.route(head=True)

    def do_GET(self):
        self.route(head=False)

    # -- responses

    def reply(self, status: int, headers: dict, body: bytes = b"", head: bool = False, length: int | None = None):
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def error(self, status: int, code: str | None, message: str, head: bool, extra: dict | None = None):
        headers = {"X-Error-Message": message, "Content-Type": "application/json", **(extra or {})}
        if code:
            headers["X-Error-Code"] = code
        self.reply(status, headers, json.dumps({"error": message}).encode(), head)

    def json(self, value, head: bool):
        self.reply(200, {"Content-Type": "application/json"}, json.dumps(value).encode(), head)

    # -- routing

    def route(self, head: bool):
        hub = self.hub
        url = urlsplit(self.path)
        path = unquote(url.path)
        hub.log({"method": self.command, "path": path, "range": self.headers.get("Range"),
                 "authorization": self.headers.get("Authorization")})
        if m := re.fullmatch(r"/cdn/([0-9a-f]{64})", path):
            return self.cdn(m.group(1), head)
        if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path):
            return self.info(m.group(1), m.group(2) or "main", head)
        if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/.*)?", path):
            return self.tree(m.group(1), m.group(2), head)
        if m := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
            return self.resolve(m.group(1), m.group(2), m.group(3), head)
        self.error(404, None, "Not Found", head)

    def repo_or_error(self, name: str, head: bool):
        repo = self.hub.repos.get(name)
        if repo is None:
            # The Hub answers 401 for a repo it does not show you: missing, or private without a token.
            self.error(401, "RepoNotFound", "Repository not found", head)
        return repo

    def info(self, name: str, revision: str, head: bool):
        if (repo := self.repo_or_error(name, head)) is None:
            return
        if (commit := repo.commit_for(revision)) is None:
            return self.error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
        # Model info is public for gated repos too; only the files are gated.
        self.json({"_id": commit[:24], "id": name, "modelId": name, "sha": commit, "private": False,
                   "gated": "manual" if repo.gated else False, "disabled": False, "tags": [],
                   "library_name": "diffusers", "siblings": [{"rfilename": p} for p in sorted(repo.files)]}, head)

    def tree(self, name: str, revision: str, head: bool):
        if (repo := self.repo_or_error(name, head)) is None:
            return
        if repo.commit_for(revision) is None:
            return self.error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
        entries = []
        for path, e in sorted(repo.files.items()):
            entry = {"type": "file", "oid": e["oid"], "size": e["size"], "path": path}
            if e["lfs"]:
                entry["lfs"] = {"oid": e["lfs"], "size": e["size"], "pointerSize": e["pointer_size"]}
            entries.append(entry)
        self.json(entries, head)

    def authorized(self, repo: Repo, head: bool) -> bool:
        if not repo.gated:
            return True
        given = self.headers.get("Authorization", "")
        token = given[len("Bearer "):] if given.startswith("Bearer ") else None
        if token is not None and token == self.hub.token:
            return True
        if token is None:
            self.error(401, "GatedRepo", f"Access to model {repo.name} is restricted. You must have access to it "
                       "and be authenticated to access it. Please log in.", head)
        elif token == self.hub.denied:
            self.error(403, "GatedRepo", f"Access to model {repo.name} is restricted and you are not in the "
                       "authorized list. Visit the model page to ask for access.", head)
        else:
            self.error(401, None, "Invalid credentials in Authorization header", head)
        return False

    def resolve(self, name: str, revision: str, path: str, head: bool):
        if name in self.hub.aliases:
            target = f"/{self.hub.aliases[name]}/resolve/{revision}/{path}"
            return self.reply(307, {"Location": target}, b"", head)
        if (repo := self.repo_or_error(name, head)) is None:
            return
        if not self.authorized(repo, head):
            return
        if (commit := repo.commit_for(revision)) is None:
            return self.error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
        entry = repo.files.get(path)
        if entry is None:
            return self.error(404, "EntryNotFound", f"Entry not found: {path}", head, {"X-Repo-Commit": commit})
        if entry["lfs"]:
            # Another origin than the endpoint's, as the Hub's CDN is: clients stop following there on HEAD and
            # drop the Authorization header on GET.
            host = self.headers.get("Host", "").replace("127.0.0.1", "localhost")
            if self.hub.cdn_host:
                host = f"{self.hub.cdn_host}:{self.server.server_address[1]}"
            location = f"http://{host}/cdn/{entry['lfs']}?name={os.path.basename(path)}"
            return self.reply(302, {"Location": location, "X-Repo-Commit": commit, "ETag": f'"{entry["oid"]}"',
                                    "X-Linked-Etag": f'"{entry["lfs"]}"', "X-Linked-Size": str(entry["size"]),
                                    "Accept-Ranges": "bytes"}, b"", head)
        self.reply(200, {"X-Repo-Commit": commit, "ETag": f'"{entry["oid"]}"', "Accept-Ranges": "bytes",
                         "Content-Type": "text/plain; charset=utf-8"}, entry["data"], head)

    def cdn(self, sha: str, head: bool):
        hub = self.hub
        entry = hub.blobs.get(sha)
        if entry is None:
            return self.error(404, None, "Not Found", head)
        data, start = entry["data"], 0
        if (given := self.headers.get("Range")) and (m := re.fullmatch(r"bytes=(\d+)-", given)):
            start = int(m.group(1))
        headers = {"ETag": f'"{sha}"', "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        status = 200
        if start:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        with hub.lock:
            drop = not head and hub.drop_after is not None and sha not in hub.dropped
            if drop:
                hub.dropped.add(sha)
            corrupt = not head and sha in hub.corrupt and sha not in hub.corrupted
            if corrupt:
                hub.corrupted.add(sha)
        if corrupt:
            body = bytes(b ^ 0xFF for b in body[:64]) + body[64:]
        if drop and len(body) > hub.drop_after:
            # Headers promise the whole body; the connection goes after part of it, as a lost network does.
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:hub.drop_after])
            self.wfile.flush()
            self.close_connection = True
            # FIN after the bytes written (a reset would discard what is still in flight).
            self.connection.shutdown(socket.SHUT_WR)
            return
        if hub.rate and not head:
            # A slow link: the body in 64 KiB pieces at --rate bytes a second.
            self.reply(status, headers, b"", head=True, length=len(body))
            for start in range(0, len(body), 65536):
                self.wfile.write(body[start:start + 65536])
                time.sleep(65536 / hub.rate)
            return
        self.reply(status, headers, body, head)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", action="append", default=[])
    parser.add_argument("--gated", action="append", default=[])
    parser.add_argument("--alias", action="append", default=[])
    parser.add_argument("--token")
    parser.add_argument("--denied-token")
    parser.add_argument("--drop-after", type=int)
    parser.add_argument("--corrupt", action="append", default=[])
    parser.add_argument("--rate", type=int, help="serve CDN bodies at this many bytes a second")
    parser.add_argument("--cdn-host")
    parser.add_argument("--log")
    parser.add_argument("--port", type=int, default=0)
    options = parser.parse_args()
    # A parent that ignores SIGTERM (a test runner) passes that on through exec: stop when told to.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    Handler.hub = Hub(options)
    server = ThreadingHTTPServer(("127.0.0.1", options.port), Handler)
    server.daemon_threads = True
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
