"""Git credentials go only to the hosts the user configured for them.

Unit tests look at the environment git gets for a remote (the header is
scoped with git's own URL matching); the others fetch for real from an HTTPS
forge on 127.0.0.1 (tests/httpsgit.py) that records every request's headers:
the same server reached as ``127.0.0.1`` and as ``localhost`` is two hosts.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from httpsgit import Forge, https_forge, make_certificate, publish, trust

from smartshare.adoption.events import Outcome
from smartshare.adoption.runner import adopt
from smartshare.errors import GitError
from smartshare.fetching import gitrunner
from smartshare.fetching.credentials import (
    TOKEN_ENV,
    TOKEN_HOST_ENV,
    USERNAME_ENV,
    HostCredential,
)
from smartshare.fetching.mirror import mirror_path, resolve_ref

from catalogs import SECRET_VALUE, make_catalog
from gitrepos import AppRepo, git_env, make_app_repo

TOKEN = "glpat-s3cr3t-t0ken-value"
OTHER_TOKEN = "other-s3cr3t-t0ken-value"


def basic(username: str, token: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{token}".encode()).decode()


@pytest.fixture(autouse=True)
def _no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (TOKEN_ENV, TOKEN_HOST_ENV, USERNAME_ENV, "GIT_CONFIG_COUNT"):
        monkeypatch.delenv(name, raising=False)


def header_for(env: dict[str, str], url: str) -> str:
    """The Authorization header git would send to ``url`` with ``env`` (git's URL matching)."""
    return subprocess.run(
        ["git", "config", "--get-urlmatch", "http.extraheader", url],
        env={**git_env(), **env},
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()


# -- the environment git gets -------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["https://git.tangerangkota.go.id/d/laksa.git", "https://127.0.0.1:8443/x.git"]
)
def test_the_environment_token_alone_goes_to_no_host(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    env = gitrunner.fetch_env(url)
    assert "GIT_CONFIG_COUNT" not in env
    assert header_for(env, url) == ""
    assert not any(TOKEN in value or "Basic" in value for value in env.values())


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("https://git.tangerangkota.go.id/diskominfo/laksa.git", True),
        ("https://GIT.tangerangkota.go.id/diskominfo/laksa.git", True),
        ("https://git.tangerangkota.go.id:443/diskominfo/laksa.git", True),
        ("https://forge.example:8443/x.git", True),
        ("https://forge.example/x.git", False),  # another port
        ("https://evil.example/x.git", False),
        ("https://git.tangerangkota.go.id.evil.example/x.git", False),
        ("https://evil.example/git.tangerangkota.go.id/x.git", False),
        ("ssh://git@git.tangerangkota.go.id/x.git", False),
        ("git@git.tangerangkota.go.id:diskominfo/x.git", False),
    ],
)
def test_the_environment_token_goes_to_the_hosts_named_beside_it(
    monkeypatch: pytest.MonkeyPatch, url: str, sent: bool
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv(USERNAME_ENV, "deploy-bot")
    monkeypatch.setenv(TOKEN_HOST_ENV, "git.tangerangkota.go.id, Forge.Example:8443")
    env = gitrunner.fetch_env(url)
    expected = f"Authorization: {basic('deploy-bot', TOKEN)}"
    assert header_for(env, url) == (expected if sent else "")
    # Scoped to its host: a redirect or a second remote elsewhere never matches.
    assert header_for(env, "https://evil.example/x.git") == ""


def test_configured_credentials_go_to_their_own_host(monkeypatch: pytest.MonkeyPatch) -> None:
    configured = (
        HostCredential(host="git.tangerangkota.go.id", token_env="TANGERANG_GIT_TOKEN"),
        HostCredential(host="127.0.0.1:8443", token_env="LOCAL_GIT_TOKEN", username="ci"),
        HostCredential(host="git.unset.example", token_env="UNSET_GIT_TOKEN"),
    )
    monkeypatch.setenv("TANGERANG_GIT_TOKEN", TOKEN)
    monkeypatch.setenv("LOCAL_GIT_TOKEN", OTHER_TOKEN)
    monkeypatch.delenv("UNSET_GIT_TOKEN", raising=False)
    monkeypatch.setenv(TOKEN_ENV, "never-sent")  # without a host list: to no host

    def sent(url: str) -> str:
        return header_for(gitrunner.fetch_env(url, credentials=configured), url)

    assert sent("https://git.tangerangkota.go.id/d/x.git") == (
        f"Authorization: {basic('oauth2', TOKEN)}"
    )
    assert sent("https://127.0.0.1:8443/x.git") == f"Authorization: {basic('ci', OTHER_TOKEN)}"
    assert sent("https://127.0.0.1/x.git") == ""
    assert sent("https://git.unset.example/x.git") == ""  # its variable is not set
    assert sent("https://elsewhere.example/x.git") == ""


def test_the_callers_own_git_config_entries_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv(TOKEN_HOST_ENV, "forge.example")
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "user.name")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "Someone")
    env = gitrunner.fetch_env("https://forge.example/x.git")
    assert env["GIT_CONFIG_COUNT"] == "3"
    assert env["GIT_CONFIG_KEY_1"] == "http.https://forge.example/.extraHeader"
    assert env["GIT_CONFIG_KEY_2"] == "http.https://forge.example/.followRedirects"
    # What git makes of it, in the caller's environment: both the caller's entry and ours.
    caller_name = subprocess.run(
        ["git", "config", "--get", "user.name"],
        env={**git_env(), **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert caller_name == "Someone"
    assert header_for(env, "https://forge.example/x.git") == (
        f"Authorization: {basic('oauth2', TOKEN)}"
    )


# -- real fetches over HTTPS ----------------------------------------------------------------


@pytest.fixture
def certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    folder = tmp_path / "tls"
    folder.mkdir()
    made = make_certificate(folder)
    trust(made, monkeypatch)
    return made


@pytest.fixture
def origin(tmp_path: Path) -> AppRepo:
    return make_app_repo(tmp_path / "origin" / "civic-app")


@pytest.fixture
def forge(tmp_path: Path, certificate: tuple[Path, Path], origin: AppRepo) -> Iterator[Forge]:
    with https_forge(tmp_path / "forge", certificate) as served:
        publish(served, origin.path, "civic-app.git")
        yield served


def _resolve(
    url: str,
    cache: Path,
    *,
    rewrites: Mapping[str, str] | None = None,
    credentials: Sequence[HostCredential] = (),
) -> str:
    resolved = resolve_ref(
        url=url, ref="v1", commit=None, cache_dir=cache, rewrites=rewrites, credentials=credentials
    )
    return resolved.commit


def test_a_fetch_sends_the_token_to_the_configured_host_and_no_other(
    forge: Forge, origin: AppRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANGERANG_GIT_TOKEN", TOKEN)
    configured = (HostCredential(host=f"127.0.0.1:{forge.port}", token_env="TANGERANG_GIT_TOKEN"),)
    assert (
        _resolve(forge.url("civic-app.git"), tmp_path / "c1", credentials=configured) == origin.v1
    )
    assert forge.authorizations("127.0.0.1") == {basic("oauth2", TOKEN)}
    # The same server under another name is another host: nothing is sent there.
    other = forge.url("civic-app.git", host="localhost")
    assert _resolve(other, tmp_path / "c2", credentials=configured) == origin.v1
    assert forge.authorizations("localhost") == {None}


def test_the_environment_token_is_sent_only_once_its_host_is_named(
    forge: Forge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    _resolve(forge.url("civic-app.git"), tmp_path / "c1")
    assert forge.authorizations("127.0.0.1") == {None}
    forge.requests.clear()
    monkeypatch.setenv(TOKEN_HOST_ENV, f"127.0.0.1:{forge.port}")
    _resolve(forge.url("civic-app.git"), tmp_path / "c2")
    assert forge.authorizations("127.0.0.1") == {basic("oauth2", TOKEN)}


def test_credentials_follow_the_url_actually_fetched(
    forge: Forge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a source rewrite, the host is the mirror's, not the manifest's."""
    monkeypatch.setenv("TANGERANG_GIT_TOKEN", TOKEN)
    monkeypatch.setenv("MIRROR_GIT_TOKEN", OTHER_TOKEN)
    url = "https://git.tangerangkota.go.id/diskominfo/civic-app.git"
    rewrites = {"https://git.tangerangkota.go.id/diskominfo/": forge.url("")}
    for_tangerang = HostCredential(host="git.tangerangkota.go.id", token_env="TANGERANG_GIT_TOKEN")
    for_mirror = HostCredential(host=f"127.0.0.1:{forge.port}", token_env="MIRROR_GIT_TOKEN")
    _resolve(url, tmp_path / "c1", rewrites=rewrites, credentials=(for_tangerang,))
    assert forge.authorizations("127.0.0.1") == {None}
    forge.requests.clear()
    _resolve(url, tmp_path / "c2", rewrites=rewrites, credentials=(for_tangerang, for_mirror))
    assert forge.authorizations("127.0.0.1") == {basic("oauth2", OTHER_TOKEN)}


def test_a_redirect_to_another_host_does_not_carry_the_token(
    tmp_path: Path, certificate: tuple[Path, Path], origin: AppRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANGERANG_GIT_TOKEN", TOKEN)
    with (
        https_forge(tmp_path / "target", certificate) as target,
        https_forge(tmp_path / "front", certificate) as front,
    ):
        publish(target, origin.path, "civic-app.git")
        front.redirect_to = f"https://localhost:{target.port}"
        configured = (
            HostCredential(host=f"127.0.0.1:{front.port}", token_env="TANGERANG_GIT_TOKEN"),
        )
        with pytest.raises(GitError) as caught:
            _resolve(front.url("civic-app.git"), tmp_path / "cache", credentials=configured)
        assert front.authorizations("127.0.0.1") == {basic("oauth2", TOKEN)}
        # git would send its headers on to the host the redirect names: with a
        # token, a redirect is refused.
        assert target.requests == []
        assert "redirect" in (caught.value.hint or "")
        # Without credentials, the redirect is followed as git does by default.
        front.requests.clear()
        assert _resolve(front.url("civic-app.git"), tmp_path / "other-cache") == origin.v1
        assert target.authorizations("localhost") == {None}


def test_an_auth_failure_says_the_token_has_no_host(
    forge: Forge, origin: AppRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forge.private = True
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with pytest.raises(GitError) as caught:
        _resolve(forge.url("civic-app.git"), tmp_path / "cache")
    hint = caught.value.hint or ""
    assert TOKEN_HOST_ENV in hint
    assert f"127.0.0.1:{forge.port}" in hint
    assert TOKEN not in caught.value.message + hint
    # Named for that host, it gets through.
    monkeypatch.setenv(TOKEN_HOST_ENV, f"127.0.0.1:{forge.port}")
    forge.requests.clear()
    assert _resolve(forge.url("civic-app.git"), tmp_path / "cache") == origin.v1
    assert forge.authorizations("127.0.0.1") == {basic("oauth2", TOKEN)}


def test_an_auth_failure_names_an_unset_token_variable(
    forge: Forge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forge.private = True
    monkeypatch.delenv("TANGERANG_GIT_TOKEN", raising=False)
    configured = (HostCredential(host=f"127.0.0.1:{forge.port}", token_env="TANGERANG_GIT_TOKEN"),)
    with pytest.raises(GitError) as caught:
        _resolve(forge.url("civic-app.git"), tmp_path / "cache", credentials=configured)
    assert "TANGERANG_GIT_TOKEN" in (caught.value.hint or "")
    assert "not set" in (caught.value.hint or "")


def test_the_token_is_never_in_argv_nor_on_disk(
    forge: Forge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import git

    log = tmp_path / "argv.log"
    wrapper = tmp_path / "git-wrapper"
    real = subprocess.run(["which", "git"], capture_output=True, text=True, check=True).stdout
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\nexec {real.strip()} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("GIT_PYTHON_GIT_EXECUTABLE", str(wrapper))
    monkeypatch.setattr(git.Git, "GIT_PYTHON_GIT_EXECUTABLE", str(wrapper))
    monkeypatch.setenv("TANGERANG_GIT_TOKEN", TOKEN)
    configured = (HostCredential(host=f"127.0.0.1:{forge.port}", token_env="TANGERANG_GIT_TOKEN"),)
    cache = tmp_path / "cache"
    _resolve(forge.url("civic-app.git"), cache, credentials=configured)
    _resolve(forge.url("civic-app.git"), cache, credentials=configured)  # ls-remote, no fetch
    assert forge.authorizations("127.0.0.1") == {basic("oauth2", TOKEN)}
    argv = log.read_text()
    assert "ls-remote" in argv and "fetch" in argv
    encoded = basic("oauth2", TOKEN).removeprefix("Basic ")
    mirror = mirror_path(cache_dir=cache, url=forge.url("civic-app.git"))
    files = [path for path in mirror.rglob("*") if path.is_file()]
    assert mirror / "config" in files  # where git would keep an extraheader or a URL
    for secret in (TOKEN, encoded):
        assert secret not in argv
        for path in files:
            assert secret.encode() not in path.read_bytes(), path


def test_adopt_uses_the_credentials_of_the_settings_file(
    forge: Forge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    publish(forge, catalog.repos["alpha"].path, "alpha.git")
    manifest = catalog.root / "manifests/apps/alpha.yaml"
    manifest.write_text(
        manifest.read_text().replace(catalog.repos["alpha"].file_url, forge.url("alpha.git"))
    )
    settings = tmp_path / "config.yaml"
    settings.write_text(
        "git_credentials:\n"
        f"  - host: 127.0.0.1:{forge.port}\n"
        "    username: deploy-bot\n"
        "    token_env: TANGERANG_GIT_TOKEN\n"
    )
    monkeypatch.setenv("SMARTSHARE_CONFIG", str(settings))
    monkeypatch.setenv("SMARTSHARE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TESTLAND_TOKEN", SECRET_VALUE)
    monkeypatch.setenv("TANGERANG_GIT_TOKEN", TOKEN)
    forge.private = True
    result = adopt(
        apps=["alpha"],
        region_file=catalog.region_file,
        workspace=tmp_path / "ws",
        catalog_root=catalog.root,
        build=False,
    )
    assert [r.outcome for r in result.results] == [Outcome.ADOPTED]
    assert forge.authorizations("127.0.0.1") == {basic("deploy-bot", TOKEN)}
    assert TOKEN not in (tmp_path / "ws" / "smartshare.lock").read_text()
