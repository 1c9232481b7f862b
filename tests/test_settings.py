"""User settings: source rewrites to a local mirror of a forge, and bad settings files."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartshare.adoption.events import Outcome
from smartshare.adoption.runner import adopt
from smartshare.errors import InvalidInputError, UsageError
from smartshare.fetching.credentials import HostCredential
from smartshare.rendering.values import parse_set_options
from smartshare.settings import load_settings
from smartshare.state.lockfile import read_lock

from catalogs import SECRET_VALUE, make_catalog


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "config.yaml"
    monkeypatch.setenv("SMARTSHARE_CONFIG", str(config))
    monkeypatch.setenv("SMARTSHARE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TESTLAND_TOKEN", SECRET_VALUE)
    return config


def test_no_settings_file_means_defaults() -> None:
    settings = load_settings()
    assert settings.source_rewrites == {}
    assert settings.cache_dir is None
    assert settings.git_credentials == ()


def test_git_credentials_are_given_per_host(_env: Path) -> None:
    _env.write_text(
        "git_credentials:\n"
        "  - host: Git.Tangerangkota.go.id\n"
        "    username: oauth2\n"
        "    token_env: TANGERANG_GIT_TOKEN\n"
        "  - host: 127.0.0.1:8443\n"
        "    token_env: LOCAL_GIT_TOKEN\n"
    )
    assert load_settings().git_credentials == (
        HostCredential(
            host="git.tangerangkota.go.id", token_env="TANGERANG_GIT_TOKEN", username="oauth2"
        ),
        HostCredential(host="127.0.0.1:8443", token_env="LOCAL_GIT_TOKEN"),
    )


def test_bad_git_credentials_are_named(_env: Path) -> None:
    _env.write_text(
        "git_credentials:\n"
        "  - host: https://git.example.go.id/\n"  # 2: a URL, not a host
        "    token_env: OK_TOKEN\n"
        "  - host: git.example.go.id\n"
        "    token: glpat-in-the-file\n"  # 5: the token itself
        "    token_env: 1BAD\n"  # 6
        "  - just-a-string\n"  # 7
    )
    with pytest.raises(InvalidInputError) as caught:
        load_settings()
    problems = {(p.field, p.line) for p in caught.value.problems}
    assert ("git_credentials.0.host", 2) in problems
    assert ("git_credentials.1.token", 5) in problems
    assert ("git_credentials.1.token_env", 6) in problems
    assert ("git_credentials.2", 7) in problems
    token = next(p for p in caught.value.problems if p.field == "git_credentials.1.token")
    assert "token_env" in token.message
    assert "glpat-in-the-file" not in token.message


def test_source_rewrite_fetches_from_the_mirror_but_records_the_original(
    tmp_path: Path, _env: Path
) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    forge_url = "https://git.example.go.id/diskominfo/"
    manifest = catalog.root / "manifests/apps/alpha.yaml"
    manifest.write_text(
        manifest.read_text().replace(catalog.repos["alpha"].file_url, forge_url + "alpha")
    )
    _env.write_text(f'source_rewrites:\n  "{forge_url}": "{(tmp_path / "forge").as_uri()}/"\n')
    result = adopt(
        apps=["alpha"],
        region_file=catalog.region_file,
        workspace=tmp_path / "ws",
        catalog_root=catalog.root,
        build=False,
    )
    assert [r.outcome for r in result.results] == [Outcome.ADOPTED]
    source = read_lock(tmp_path / "ws").apps["alpha"].source
    assert source.url == forge_url + "alpha"
    assert source.commit == catalog.repos["alpha"].rev("v1.0.0")


def test_bad_settings_file_names_the_line(_env: Path) -> None:
    _env.write_text("source_rewrites:\n  https://a.example/: 'ext::sh -c id'\ncolour: blue\n")
    with pytest.raises(InvalidInputError) as caught:
        load_settings()
    problems = {p.field: p for p in caught.value.problems}
    assert problems["colour"].line == 3
    assert "unknown key" in problems["colour"].message
    assert problems["source_rewrites.https://a.example/"].line == 2
    assert "not allowed" in problems["source_rewrites.https://a.example/"].message


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["laksa.site_title=LAKSA Badung"], {"laksa": {"site_title": "LAKSA Badung"}}),
        (["a.b=x=y", "a.c="], {"a": {"b": "x=y", "c": ""}}),
    ],
)
def test_set_options_parse(items: list[str], expected: dict[str, dict[str, str]]) -> None:
    assert parse_set_options(items) == expected


@pytest.mark.parametrize("item", ["laksa", "laksa=1", ".x=1", "laksa.=1"])
def test_set_options_reject_malformed(item: str) -> None:
    with pytest.raises(UsageError, match=r"APP\.PARAM=VALUE"):
        parse_set_options([item])
