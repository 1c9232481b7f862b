"""A tiny HTTPS git forge on 127.0.0.1 for the credential tests.

Smart HTTP through ``git http-backend`` (shallow fetches need it), TLS with a
certificate made for the test (for ``127.0.0.1`` and ``localhost``, trusted
through ``GIT_SSL_CAINFO``), and every request's headers recorded, so a test
can see which host name was asked for and whether an Authorization header
came with it.  ``private`` makes it answer 401 to requests without one;
``redirect_to`` sends every request on to another server.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gitrepos import git_env


@dataclass(frozen=True)
class Request:
    host: str  # the Host header: which name the client used
    path: str
    authorization: str | None


@dataclass
class Forge:
    root: Path  # holds the bare repositories served
    port: int
    requests: list[Request] = field(default_factory=list)
    private: bool = False
    redirect_to: str | None = None  # "https://localhost:PORT"

    def url(self, name: str, *, host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.port}/{name}"

    def authorizations(self, host: str) -> set[str | None]:
        return {r.authorization for r in self.requests if r.host.split(":")[0] == host}


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _handler(forge: Forge) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            forge.requests.append(
                Request(
                    host=self.headers.get("Host", ""),
                    path=self.path,
                    authorization=self.headers.get("Authorization"),
                )
            )
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if forge.redirect_to is not None:
                self.send_response(302)
                self.send_header("Location", forge.redirect_to + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if forge.private and not self.headers.get("Authorization"):
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="forge"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path, _, query = self.path.partition("?")
            env = {
                **git_env(),
                "GIT_PROJECT_ROOT": str(forge.root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                "REMOTE_ADDR": "127.0.0.1",
            }
            done = subprocess.run(
                ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
            )
            head, _, payload = done.stdout.partition(b"\r\n\r\n")
            if not _:
                head, _, payload = done.stdout.partition(b"\n\n")
            status = 200
            headers = []
            for line in head.decode("latin-1").splitlines():
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


@contextmanager
def https_forge(root: Path, certificate: tuple[Path, Path]) -> Iterator[Forge]:
    """Serve the bare repositories in ``root`` over HTTPS on 127.0.0.1 (any free port)."""
    root.mkdir(parents=True, exist_ok=True)
    forge = Forge(root=root, port=0)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(forge))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    forge.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield forge
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def trust(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Make git trust the test certificate, and reach 127.0.0.1 without a proxy."""
    monkeypatch.setenv("GIT_SSL_CAINFO", str(certificate[0]))
    for proxy in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def publish(forge: Forge, source: Path, name: str) -> None:
    """Put a bare copy of the repository ``source`` on the forge as ``name``."""
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(source), str(forge.root / name)],
        env=git_env(),
        check=True,
        capture_output=True,
    )
