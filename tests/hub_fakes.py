"""A local stand-in for the Hugging Face Hub (HTTP, range requests) and a HF cache built by hand."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hf_cache(
    cache: Path, repo_id: str, folder: Path, commit: str = COMMIT, refs: tuple[str, ...] = ("main",)
) -> Path:
    """Lay `folder`'s files out in `cache` as huggingface_hub does: `models--ORG--NAME/blobs/HASH`
    (sha256 of the content, git's sha1 for small files: any name works), `snapshots/COMMIT/FILE`
    relative links to the blobs, and `refs/BRANCH` holding the commit. The snapshot folder."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for file in sorted(folder.iterdir()):
        data = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / file.name).unlink(missing_ok=True)
        (snapshot / file.name).symlink_to(Path("..", "..", "blobs", blob.name))
    (repo / "refs").mkdir(exist_ok=True)
    for ref in refs:
        (repo / "refs" / ref).write_text(commit)
    return snapshot


@dataclass
class Repo:
    """One repository: its files at one commit, and how the server treats requests for it."""

    files: dict[str, bytes]
    commit: str = COMMIT
    branches: tuple[str, ...] = ("main",)
    # "" (public), "private" (401 RepoNotFound), "gated" (403 GatedRepo), "forbidden" (403),
    # "bad-token" (401 invalid credentials), "token=SECRET" (private: every request, range
    # requests included, must carry `Authorization: Bearer SECRET`).
    access: str = ""
    ranges: bool = True  # False: answer range requests with the whole file (200), as some do


@dataclass
class FakeHub:
    """What the server holds and what it sent: (file, first byte, last byte) per body served."""

    repos: dict[str, Repo] = field(default_factory=dict)
    sent: list[tuple[str, int, int]] = field(default_factory=list)
    url: str = ""

    def add(self, repo_id: str, folder: Path, **options: object) -> Repo:
        files = {f.name: f.read_bytes() for f in sorted(folder.iterdir()) if f.is_file()}
        repo = self.repos[repo_id] = Repo(files, **options)  # type: ignore[arg-type]
        return repo

    def bytes_sent(self, file: str) -> int:
        return sum(stop - start + 1 for name, start, stop in self.sent if name == file)


_INFO = re.compile(r"/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/?]+))?")
_TREE = re.compile(r"/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/?]+)")
_RESOLVE = re.compile(r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)")
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet: no request lines in test output
            pass

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def do_GET(self) -> None:
            self._serve(body=True)

        def _fail(self, code: int, error: str = "", message: str = "") -> None:
            self.send_response(code)
            if error:
                self.send_header("X-Error-Code", error)
            if message:
                self.send_header("X-Error-Message", message)
            payload = json.dumps({"error": message or error or str(code)}).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _repo(self, repo_id: str, rev: str | None) -> Repo | None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._fail(404, "RepoNotFound", "Repository not found")
                return None
            denied = {
                "private": (401, "RepoNotFound", "Invalid username or password."),
                "gated": (403, "GatedRepo", "Access to model is restricted."),
                "forbidden": (403, "", "You do not have access"),
                "bad-token": (401, "", "Invalid credentials in Authorization header"),
            }.get(repo.access)
            secret = repo.access.removeprefix("token=")
            if repo.access.startswith("token=") and (
                self.headers.get("Authorization") != f"Bearer {secret}"
            ):
                denied = (401, "RepoNotFound", "Invalid username or password.")
            if denied is not None:
                self._fail(*denied)
                return None
            if rev is not None and rev not in (repo.commit, *repo.branches):
                self._fail(404, "RevisionNotFound", "Invalid rev id")
                return None
            return repo

        def _json(self, value: object) -> None:
            payload = json.dumps(value).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _serve(self, body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            if found := _TREE.fullmatch(path):
                if repo := self._repo(found["repo"], found["rev"]):
                    self._json(
                        [
                            {"type": "file", "path": name, "size": len(data), "oid": "0" * 40}
                            for name, data in repo.files.items()
                        ]
                    )
                return
            if found := _INFO.fullmatch(path):
                if repo := self._repo(found["repo"], found["rev"]):
                    siblings = [{"rfilename": name} for name in repo.files]
                    self._json({"id": found["repo"], "sha": repo.commit, "siblings": siblings})
                return
            found = _RESOLVE.fullmatch(path)
            if found is None:
                self._fail(404)
                return
            repo = self._repo(found["repo"], found["rev"])
            if repo is None:
                return
            data = repo.files.get(found["file"])
            if data is None:
                self._fail(404, "EntryNotFound", "Entry not found")
                return
            start, stop = 0, len(data) - 1
            wanted = _RANGE.fullmatch(self.headers.get("Range", "")) if repo.ranges else None
            if wanted:
                start = int(wanted[1])
                stop = min(int(wanted[2]) if wanted[2] else stop, len(data) - 1)
            self.send_response(206 if wanted else 200)
            self.send_header("X-Repo-Commit", repo.commit)
            self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(stop - start + 1))
            if wanted:
                self.send_header("Content-Range", f"bytes {start}-{stop}/{len(data)}")
            self.end_headers()
            if body:
                hub.sent.append((found["file"], start, stop))
                self.wfile.write(data[start : stop + 1])

    return Handler


@contextmanager
def serving(hub: FakeHub) -> Iterator[FakeHub]:
    """Serve `hub` on 127.0.0.1 (a free port) in a thread while the block runs; `hub.url`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
