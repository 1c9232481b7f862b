"""Build small but real catalogues in tmp_path for the adopt tests.

Each app's source is a real git repository (tests/gitrepos.py) whose
Dockerfile builds ``FROM busybox:1.36``; templates render a page with the
region's title into the image and a runtime env file with a secret.
"""

from __future__ import annotations

import secrets
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import engineimages
import pytest

from gitrepos import GitRepo, init_repo

SECRET_VALUE = "s3cr3t-Token-9f4e2b7c1d"


def isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, secret: str = SECRET_VALUE) -> Path:
    """Own git cache, the test secret in the environment, and a settings file of the
    test's own (none until the test writes it): its path."""
    config = tmp_path / "config.yaml"
    monkeypatch.setenv("SMARTSHARE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SMARTSHARE_CONFIG", str(config))
    monkeypatch.setenv("TESTLAND_TOKEN", secret)
    return config


DOCKERFILE = """\
FROM busybox:1.36
COPY www/ /www/
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""


@dataclass
class CatalogFixture:
    root: Path
    region_file: Path
    region: str
    repos: dict[str, GitRepo] = field(default_factory=dict)

    def cli_options(self, workspace: Path) -> list[str]:
        """``--region``, ``--workspace`` and ``--catalog`` for a command run on this catalogue."""
        return [
            "--region",
            str(self.region_file),
            "--workspace",
            str(workspace),
            "--catalog",
            str(self.root),
        ]

    def tag(self, app: str, *, namespace: str = "smartshare") -> str:
        return f"{namespace}/{app}:1.0.0-{self.region}"

    def write(self, relpath: str, text: str) -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path


def make_source(path: Path, *, dockerfile: str = DOCKERFILE, tag: str = "v1.0.0") -> GitRepo:
    repo = init_repo(path)
    repo.write("Dockerfile", dockerfile)
    repo.write("www/index.html", "<p>Kota Tangerang</p>\n")
    repo.write("bin/start.sh", "#!/bin/sh\nexec httpd -f\n", executable=True)
    repo.commit("release")
    repo.tag(tag)
    return repo


def app_manifest(
    name: str,
    repo_url: str,
    *,
    requires: tuple[str, ...] = (),
    version: str = "1.0.0",
    ref: str = "v1.0.0",
    commit: str | None = None,
) -> str:
    pin = f"\n  commit: {commit}" if commit else ""
    needs = ", ".join(requires)
    return f"""\
apiVersion: smartshare/v1
kind: App
name: {name}
title: {name.title()}
summary:
  en: The {name} test app.
  id: Aplikasi uji {name}.
owner:
  name: Pemerintah Kota Tangerang
  region_code: "36.71"
  contact: diskominfo@tangerangkota.go.id
category: public-service
tags: [test]
license: MIT
version: "{version}"
maturity: stable
source:
  repo: {repo_url}
  ref: {ref}{pin}
images:
  - name: {name}
    context: "."
    dockerfile: Dockerfile
parameters:
  - name: greeting
    type: string
    default: Selamat datang
    description: Shown on the page.
  - name: api_token
    type: string
    secret: true
    description: Token for the back office.
templates:
  - src: page/index.html.j2
    dest: www/index.html
  - src: page/runtime.env.j2
    dest: runtime.env
    target: runtime
requires: [{needs}]
"""


REGION = """\
apiVersion: smartshare/v1
kind: Region
name: {name}
title: Kabupaten Testland
type: kabupaten
code: "51.03"
province: Bali
timezone: Asia/Makassar
locale: id-ID
domain: testland.go.id
{registry}contact:
  email: it@testland.go.id
branding:
  primary_color: "#0B6E4F"
apps:
{apps}"""


def make_catalog(
    tmp_path: Path,
    apps: dict[str, tuple[str, ...]],
    *,
    registry: str | None = None,
    dockerfiles: dict[str, str] | None = None,
) -> CatalogFixture:
    """A catalogue with ``apps`` (name -> requires) and a region ``testland-XXXXXX``.

    Every app's ``api_token`` secret is ``env:TESTLAND_TOKEN``.
    """
    root = tmp_path / "catalog"
    # A region name of its own per test: image tags never collide between tests
    # (or test runs) sharing one engine, and the test's images are removed after it.
    region = engineimages.claim(f"testland-{secrets.token_hex(3)}")
    catalog = CatalogFixture(
        root=root, region_file=root / f"manifests/regions/{region}.yaml", region=region
    )
    catalog.write(
        "templates/page/index.html.j2",
        '<h1>{{ params.greeting | e }}</h1>\n<p class="region">{{ region.title | e }}</p>\n'
        "<p>{{ app.title | e }} {{ app.version }}</p>\n",
    )
    catalog.write("templates/page/runtime.env.j2", "API_TOKEN={{ params.api_token | shquote }}\n")
    for name, requires in apps.items():
        dockerfile = (dockerfiles or {}).get(name, DOCKERFILE)
        repo = make_source(tmp_path / "forge" / name, dockerfile=dockerfile)
        catalog.repos[name] = repo
        catalog.write(
            f"manifests/apps/{name}.yaml", app_manifest(name, repo.file_url, requires=requires)
        )
    values = "".join(f"  {name}:\n    api_token: env:TESTLAND_TOKEN\n" for name in apps)
    catalog.write(
        f"manifests/regions/{region}.yaml",
        REGION.format(
            name=region, registry=f"registry: {registry}\n" if registry else "", apps=values
        ),
    )
    return catalog


def source_patch(catalog: CatalogFixture, app: str, old: str, new: str, path: str) -> str:
    """A ``git diff`` of the app's source changing ``old`` to ``new`` in ``path``."""
    repo = catalog.repos[app]
    original = (repo.path / path).read_text()
    assert old in original
    (repo.path / path).write_text(original.replace(old, new))
    patch = repo.git("diff") + "\n"
    repo.git("checkout", "--", path)
    return patch


def add_patch(catalog: CatalogFixture, app: str, name: str, text: str) -> None:
    """Write ``patches/<app>/<name>`` next to the profile and list it in the profile."""
    folder = catalog.region_file.parent / "patches" / app
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    profile = catalog.region_file.read_text()
    entry = f"  {app}:\n    api_token: env:TESTLAND_TOKEN\n"
    listed = f"    patches: [patches/{app}/{name}]\n"
    if "patches:" in profile:
        profile = profile.replace("    patches: [", f"    patches: [patches/{app}/{name}, ")
    else:
        profile = profile.replace(entry, entry + listed)
    catalog.region_file.write_text(profile)
