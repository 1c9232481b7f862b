"""Fetching (smartshare.fetching: mirror, export, git runner) against real git repositories."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from smartshare.cache import default_cache_dir
from smartshare.errors import (
    GitError,
    PinnedCommitMismatchError,
    UnsafePathError,
    WorkspaceError,
)
from smartshare.fetching import credentials, gitrunner
from smartshare.fetching.export import FetchedSource, export_tree
from smartshare.fetching.mirror import ResolvedRef, mirror_path, resolve_ref

from gitrepos import AppRepo, git_env, init_repo, make_app_repo, make_tree_commit

TOKEN = "glpat-s3cr3t-t0ken-value"


@pytest.fixture
def app(tmp_path: Path) -> AppRepo:
    return make_app_repo(tmp_path / "origin" / "civic-app")


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture(autouse=True)
def _no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(credentials.TOKEN_ENV, raising=False)
    monkeypatch.delenv(credentials.USERNAME_ENV, raising=False)


def _files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and not path.is_symlink()]


def fetch(
    *,
    url: str,
    ref: str,
    commit: str | None,
    dest: Path,
    cache_dir: Path,
    rewrites: dict[str, str] | None = None,
) -> FetchedSource:
    """What adopt does with a source: resolve the ref (checking the pin), export its tree."""
    resolved = resolve_ref(url=url, ref=ref, commit=commit, cache_dir=cache_dir, rewrites=rewrites)
    return export_tree(resolved=resolved, dest=dest)


def _full_text(err: pytest.ExceptionInfo[GitError]) -> str:
    return f"{err.value.message}\n{err.value.hint}"


# --- fetching refs ----------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected", "app_py"),
    [
        ("v1", "v1", "halo v1"),  # annotated tag, peeled to its commit
        ("v2", "v2", "halo v2"),  # lightweight tag
        ("refs/tags/v1", "v1", "halo v1"),
        ("main", "v2", "halo v2"),
        ("develop", "develop", "halo develop"),
    ],
)
def test_fetch_tag_or_branch(
    app: AppRepo, cache: Path, tmp_path: Path, ref: str, expected: str, app_py: str
) -> None:
    dest = tmp_path / "work" / "src"
    fetched = fetch(url=app.url, ref=ref, commit=None, dest=dest, cache_dir=cache)

    assert fetched == FetchedSource(path=dest, url=app.url, ref=ref, commit=getattr(app, expected))
    assert app_py in (dest / "app.py").read_text()


def test_fetch_over_file_url(app: AppRepo, cache: Path, tmp_path: Path) -> None:
    fetched = fetch(
        url=app.repo.file_url, ref="v1", commit=None, dest=tmp_path / "src", cache_dir=cache
    )
    assert fetched.commit == app.v1
    assert fetched.url == app.repo.file_url


def test_relative_local_path_means_the_callers_folder(
    app: AppRepo, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(app.path.parent)
    resolved = resolve_ref(url="civic-app", ref="v2", commit=None, cache_dir=cache)
    assert resolved.commit == app.v2
    assert resolved.url == "civic-app"


def test_pinned_commit_matches(app: AppRepo, cache: Path, tmp_path: Path) -> None:
    fetched = fetch(url=app.url, ref="v1", commit=app.v1, dest=tmp_path / "src", cache_dir=cache)
    assert fetched.commit == app.v1


def test_pinned_commit_is_compared_case_insensitively(app: AppRepo, cache: Path) -> None:
    resolved = resolve_ref(url=app.url, ref="v1", commit=app.v1.upper(), cache_dir=cache)
    assert resolved.commit == app.v1


def test_pinned_commit_mismatch(app: AppRepo, cache: Path, tmp_path: Path) -> None:
    dest = tmp_path / "src"
    with pytest.raises(PinnedCommitMismatchError) as err:
        fetch(url=app.url, ref="v2", commit=app.v1, dest=dest, cache_dir=cache)

    message = err.value.message
    assert "'v2'" in message
    assert app.v1 in message  # expected
    assert app.v2 in message  # actual
    assert app.url in message
    assert err.value.hint is not None
    assert "update 'commit' in the manifest" in err.value.hint
    assert not dest.exists()


def test_moved_tag_is_followed(app: AppRepo, cache: Path) -> None:
    first = resolve_ref(url=app.url, ref="v1", commit=None, cache_dir=cache)
    assert first.commit == app.v1

    moved = app.repo.commit("hotfix behind the tag")
    app.repo.move_tag("v1", to=moved, annotated=True)

    again = resolve_ref(url=app.url, ref="v1", commit=None, cache_dir=cache)
    assert again.commit == moved
    with pytest.raises(PinnedCommitMismatchError) as err:
        resolve_ref(url=app.url, ref="v1", commit=app.v1, cache_dir=cache)
    assert app.v1 in err.value.message
    assert moved in err.value.message


def _fetch_head_stamp(cache: Path) -> int | None:
    """When the mirror last fetched (git writes FETCH_HEAD on every fetch)."""
    heads = list((cache / "git").glob("*.git/FETCH_HEAD"))
    return heads[0].stat().st_mtime_ns if heads else None


def test_an_unchanged_ref_is_not_fetched_again(app: AppRepo, cache: Path) -> None:
    first = resolve_ref(url=app.url, ref="v1", commit=None, cache_dir=cache)
    fetched = _fetch_head_stamp(cache)
    assert fetched is not None
    time.sleep(0.01)  # a second fetch would leave a newer stamp
    again = resolve_ref(url=app.url, ref="v1", commit=None, cache_dir=cache)
    assert again == first
    assert _fetch_head_stamp(cache) == fetched, "nothing moved: the ref list was enough"

    app.repo.move_tag("v1", to=app.repo.commit("behind the tag"), annotated=True)
    moved = resolve_ref(url=app.url, ref="v1", commit=None, cache_dir=cache)
    assert moved.commit == app.repo.rev("v1^{commit}")
    assert _fetch_head_stamp(cache) != fetched


def test_the_ref_a_fetch_would_take_is_the_one_compared(app: AppRepo, cache: Path) -> None:
    """A tag and a branch with one name: git (and so the check) takes the tag."""
    app.repo.tag("release", at=app.v1)
    app.repo.branch("release", at=app.v1)
    assert resolve_ref(url=app.url, ref="release", commit=None, cache_dir=cache).commit == app.v1
    fetched = _fetch_head_stamp(cache)
    app.repo.rewind("release", app.v2)  # the branch moves, the tag does not
    time.sleep(0.01)
    assert resolve_ref(url=app.url, ref="release", commit=None, cache_dir=cache).commit == app.v1
    assert _fetch_head_stamp(cache) == fetched
    app.repo.move_tag("release", to=app.v2)
    assert resolve_ref(url=app.url, ref="release", commit=None, cache_dir=cache).commit == app.v2


def test_a_pin_on_the_moved_tag_is_met_although_the_mirror_holds_the_old_one(
    app: AppRepo, cache: Path
) -> None:
    resolve_ref(url=app.url, ref="v1", commit=None, cache_dir=cache)
    moved = app.repo.commit("hotfix")
    app.repo.move_tag("v1", to=moved)

    resolved = resolve_ref(url=app.url, ref="v1", commit=moved, cache_dir=cache)
    assert resolved.commit == moved


def test_rewound_branch_is_followed(app: AppRepo, cache: Path) -> None:
    assert resolve_ref(url=app.url, ref="develop", commit=None, cache_dir=cache).commit == (
        app.develop
    )
    app.repo.rewind("develop", app.v1)
    assert resolve_ref(url=app.url, ref="develop", commit=None, cache_dir=cache).commit == app.v1


def test_tag_and_branch_sharing_a_prefix_do_not_collide(app: AppRepo, cache: Path) -> None:
    app.repo.tag("release")
    app.repo.branch("release/1.0", at=app.v1)
    assert resolve_ref(url=app.url, ref="release", commit=None, cache_dir=cache).commit == app.v2
    assert resolve_ref(url=app.url, ref="release/1.0", commit=None, cache_dir=cache).commit == (
        app.v1
    )


def test_a_ref_the_mirror_lacks_is_fetched_into_it(app: AppRepo, cache: Path) -> None:
    first = resolve_ref(url=app.url, ref="v1", commit=None, cache_dir=cache)
    resolved = resolve_ref(url=app.url, ref="develop", commit=None, cache_dir=cache)
    assert resolved.commit == app.develop
    assert resolved.mirror == first.mirror


# --- errors -------------------------------------------------------------------


def test_missing_ref(app: AppRepo, cache: Path) -> None:
    with pytest.raises(GitError) as err:
        resolve_ref(url=app.url, ref="v9", commit=None, cache_dir=cache)
    assert err.value.message == f"ref 'v9' not found in {app.url}"
    assert err.value.hint
    assert "tag or branch" in err.value.hint


def test_missing_ref_with_a_pin_is_still_an_error(app: AppRepo, cache: Path) -> None:
    with pytest.raises(GitError) as err:
        resolve_ref(url=app.url, ref="v9", commit=app.v1, cache_dir=cache)
    assert not isinstance(err.value, PinnedCommitMismatchError)
    assert "ref 'v9' not found" in err.value.message


def test_unreachable_local_repository(tmp_path: Path, cache: Path) -> None:
    missing = str(tmp_path / "no-such-repo")
    with pytest.raises(GitError) as err:
        resolve_ref(url=missing, ref="v1", commit=None, cache_dir=cache)
    assert missing in err.value.message
    assert "'v1'" in err.value.message
    assert "does not appear to be a git repository" in err.value.message
    assert err.value.hint
    assert "SMARTSHARE_GIT_TOKEN" in err.value.hint


@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% {pwned}",
        "ext::sh%-c%touch%{pwned}",
        "--upload-pack=touch {pwned}",
        "-u touch {pwned}",
        "fd::17/{pwned}",
        "http://127.0.0.1:1/{pwned}",
    ],
)
def test_disallowed_url_is_refused_before_git_runs(tmp_path: Path, cache: Path, url: str) -> None:
    pwned = tmp_path / "pwned"
    with pytest.raises(GitError) as err:
        fetch(
            url=url.format(pwned=pwned),
            ref="main",
            commit=None,
            dest=tmp_path / "src",
            cache_dir=cache,
        )
    assert "refusing repository URL" in err.value.message
    assert not pwned.exists()
    assert not cache.exists()
    assert not (tmp_path / "src").exists()


def test_rewrite_to_a_disallowed_url_is_refused(tmp_path: Path, cache: Path) -> None:
    pwned = tmp_path / "pwned"
    with pytest.raises(GitError) as err:
        resolve_ref(
            url="https://forge.example.invalid/app.git",
            ref="main",
            commit=None,
            cache_dir=cache,
            rewrites={"https://forge.example.invalid/": f"ext::sh -c touch% {pwned}% "},
        )
    assert "rewritten" in err.value.message
    assert not pwned.exists()


@pytest.mark.parametrize("ref", ["", "-v1", "+v1", "v1:refs/heads/x", "a..b", "v1 ", "x/.y", "@"])
def test_bad_ref_is_refused(app: AppRepo, cache: Path, ref: str) -> None:
    with pytest.raises(GitError) as err:
        resolve_ref(url=app.url, ref=ref, commit=None, cache_dir=cache)
    assert "refusing ref" in err.value.message


@pytest.mark.parametrize("pin", ["abc123", "z" * 40, ""])
def test_bad_pin_is_refused(app: AppRepo, cache: Path, pin: str) -> None:
    with pytest.raises(GitError) as err:
        resolve_ref(url=app.url, ref="v1", commit=pin, cache_dir=cache)
    assert "40-hex" in err.value.message


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:secret@127.0.0.1:1/x.git", "https://***@127.0.0.1:1/x.git"),
        ("https://secret@127.0.0.1:1/x.git", "https://***@127.0.0.1:1/x.git"),
        ("ssh://git:secret@127.0.0.1:1/x.git", "ssh://***@127.0.0.1:1/x.git"),
        ("git:secret@127.0.0.1:x.git", "***@127.0.0.1:x.git"),
        ("https://git:secret@[::1/x.git", "https://***@[::1/x.git"),
    ],
)
def test_credentials_in_url_never_appear_in_errors(cache: Path, url: str, shown: str) -> None:
    with pytest.raises(GitError, match=r"^refusing repository URL") as err:
        resolve_ref(url=url, ref="main", commit=None, cache_dir=cache)
    assert "secret" not in _full_text(err)
    assert "secret" not in str(err.value)
    assert f"'{shown}'" in err.value.message  # named, with the credentials left out
    assert not cache.exists()


def test_connection_refused_names_url_and_hides_token(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(credentials.TOKEN_ENV, TOKEN)
    with pytest.raises(GitError) as err:
        resolve_ref(url="https://127.0.0.1:1/x.git", ref="main", commit=None, cache_dir=cache)
    text = _full_text(err)
    assert "https://127.0.0.1:1/x.git" in err.value.message
    assert "'main'" in err.value.message
    assert "connect" in err.value.message.lower()
    assert TOKEN not in text
    assert "SMARTSHARE_GIT_TOKEN" in (err.value.hint or "")


def stalling_ssh(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in for ssh that never answers: it sleeps 30 s, then leaves a marker file."""
    marker = tmp_path / "ssh-outlived-the-timeout"
    script = tmp_path / "stalling-ssh"
    script.write_text(f"#!/bin/sh\nsleep 30\ntouch {marker}\n")
    script.chmod(0o755)
    return script, marker


def assert_stopped_at_the_timeout(script: Path, marker: Path) -> None:
    """The call came back without waiting for the stand-in (which would have left its
    marker), and the stand-in was stopped with git, not left running."""
    assert not marker.exists(), "the call waited for the stand-in to end"
    time.sleep(0.2)  # for the killed processes to be reaped
    assert _running(script) == [], "the ssh stand-in was left running"


def _running(program: Path) -> list[int]:
    """The processes whose command line names ``program`` (read whole: ps cuts long lines)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # not a process, or one that ended meanwhile
            continue
        if os.fsencode(program) in arguments:
            found.append(int(entry.name))
    return found


def test_a_hanging_fetch_is_killed_after_the_timeout(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The user's own GIT_SSH_COMMAND is respected: here, one that never answers.
    script, marker = stalling_ssh(tmp_path)
    monkeypatch.setenv("GIT_SSH_COMMAND", str(script))
    url = "git@forge.example.invalid:apps/civic-app.git"
    with pytest.raises(GitError) as err:
        resolve_ref(url=url, ref="v1", commit=None, cache_dir=cache, timeout=1.0)
    assert_stopped_at_the_timeout(script, marker)
    assert "timed out after 1 s" in err.value.message
    assert url in err.value.message
    # A killed fetch may leave git's lock files: the mirror is dropped, next run starts afresh.
    assert not mirror_path(cache_dir=cache, url=url).exists()


def test_a_hanging_remote_is_given_up_on_when_asking_for_its_refs(
    app: AppRepo, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = app.url.rstrip("/").rpartition("/")[2]
    url = f"https://git.example.invalid/apps/{name}"
    local = {"https://git.example.invalid/apps/": app.url.removesuffix(name)}
    resolve_ref(url=url, ref="v1", commit=None, cache_dir=cache, rewrites=local)
    mirror = mirror_path(cache_dir=cache, url=url)
    # The same repository, now behind a link that never answers.
    script, marker = stalling_ssh(tmp_path)
    monkeypatch.setenv("GIT_SSH_COMMAND", str(script))
    stalled = {"https://git.example.invalid/apps/": "git@forge.example.invalid:apps/"}
    with pytest.raises(GitError) as err:
        resolve_ref(url=url, ref="v1", commit=None, cache_dir=cache, timeout=1.0, rewrites=stalled)
    assert_stopped_at_the_timeout(script, marker)
    assert "timed out after 1 s" in err.value.message
    # Only the ref list was asked for: nothing was half-fetched, the mirror stays.
    assert mirror.is_dir()
    assert (
        resolve_ref(url=url, ref="v1", commit=None, cache_dir=cache, rewrites=local).commit
        == app.v1
    )


def test_a_hanging_query_is_killed_with_what_it_started(tmp_path: Path) -> None:
    """A query runs git without GitPython; its timeout still stops git's children."""
    repo = init_repo(tmp_path / "repo")
    script, marker = stalling_ssh(tmp_path)
    status, _out, err = gitrunner.run_git(
        ["ls-remote", "--", "git@forge.example.invalid:apps/x.git"],
        git_dir=repo.path / ".git",
        env={**gitrunner.base_env(), "GIT_SSH_COMMAND": str(script)},
        timeout=1.0,
        query=True,
    )
    assert status != 0
    assert err == "Timeout: git ls-remote did not complete in 1 s"
    assert_stopped_at_the_timeout(script, marker)


def test_git_never_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GIT_SSH_COMMAND", raising=False)
    monkeypatch.delenv("GIT_SSH", raising=False)
    env = gitrunner.base_env()
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_SSH_COMMAND"] == "ssh -o BatchMode=yes"
    assert env["GIT_HTTP_LOW_SPEED_LIMIT"] == "1000"
    assert env["GIT_HTTP_LOW_SPEED_TIME"] == "30"
    monkeypatch.setenv("GIT_SSH_COMMAND", "ssh -i /keys/deploy")
    assert "GIT_SSH_COMMAND" not in gitrunner.base_env()


def test_waiting_for_a_locked_mirror_times_out(app: AppRepo, cache: Path) -> None:
    mirror = mirror_path(cache_dir=cache, url=app.url)
    mirror.parent.mkdir(parents=True)
    with (mirror.parent / (mirror.name + ".lock")).open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(GitError) as err:
            resolve_ref(url=app.url, ref="v1", commit=None, cache_dir=cache, timeout=0.3)
    assert "waiting for another smartshare run" in err.value.message
    # Once released, the same call goes through.
    assert resolve_ref(url=app.url, ref="v1", commit=None, cache_dir=cache).commit == app.v1


def test_relative_cache_and_destination(
    app: AppRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    fetched = fetch(
        url=app.url, ref="v1", commit=None, dest=Path("work/src"), cache_dir=Path("cache")
    )
    assert fetched.path == Path("work/src")
    assert "halo v1" in (tmp_path / "work" / "src" / "app.py").read_text()
    assert len(list((tmp_path / "cache" / "git").glob("*.git"))) == 1


def test_inherited_git_location_variables_are_ignored(
    app: AppRepo, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a git hook running smartshare would pass on.
    bystander = init_repo(tmp_path / "bystander")
    bystander.commit("untouched")
    before = bystander.git("for-each-ref")
    index = (bystander.path / ".git" / "index").read_bytes()  # the export uses its own
    monkeypatch.setenv("GIT_DIR", str(bystander.path / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(bystander.path))
    monkeypatch.setenv("GIT_INDEX_FILE", str(bystander.path / ".git" / "index"))
    monkeypatch.setenv("GIT_OBJECT_DIRECTORY", str(bystander.path / ".git" / "objects"))

    fetched = fetch(url=app.url, ref="v2", commit=None, dest=tmp_path / "src", cache_dir=cache)
    assert fetched.commit == app.v2
    assert (bystander.path / ".git" / "index").read_bytes() == index
    assert not (bystander.path / "app.py").exists()
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY"):
        monkeypatch.delenv(name)
    assert bystander.git("for-each-ref") == before
    assert bystander.git("cat-file", "-t", app.v2, check=False) != "commit"


def test_very_long_branch_name(app: AppRepo, cache: Path) -> None:
    name = "feature/" + "x" * 180
    app.repo.branch(name, at=app.v1)
    assert resolve_ref(url=app.url, ref=name, commit=None, cache_dir=cache).commit == app.v1
    again = resolve_ref(url=app.url, ref=name, commit=None, cache_dir=cache)
    assert again.commit == app.v1


# --- the exported tree --------------------------------------------------------


def test_exported_tree_has_no_git_and_keeps_modes_and_symlinks(
    app: AppRepo, cache: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "src"
    fetch(url=app.url, ref="v1", commit=None, dest=dest, cache_dir=cache)

    assert not (dest / ".git").exists()
    assert not list(dest.rglob(".git"))
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == [
        "Dockerfile",
        "app.py",
        "config",
        "config/settings.toml.j2",
        "current-config",
        "run.sh",
    ]
    assert (dest / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (dest / "app.py").stat().st_mode & 0o777 == 0o644
    link = dest / "current-config"
    assert link.is_symlink()
    assert os.readlink(link) == "config/settings.toml.j2"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".src.partial-")]


def test_modes_do_not_depend_on_the_umask(app: AppRepo, cache: Path, tmp_path: Path) -> None:
    previous = os.umask(0o077)
    try:
        fetch(url=app.url, ref="v1", commit=None, dest=tmp_path / "src", cache_dir=cache)
    finally:
        os.umask(previous)
    assert (tmp_path / "src" / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "src" / "Dockerfile").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "src" / "config").stat().st_mode & 0o777 == 0o755


def test_export_ignores_gitattributes_of_the_tree(cache: Path, tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "origin" / "attrs")
    repo.write(".gitattributes", "hidden/** export-ignore\nversion.txt export-subst ident\n")
    repo.write("hidden/keep.txt", "needed by the build\n")
    repo.write("version.txt", "$Format:%H$ $Id$\n")
    repo.write("dos.txt", "line\r\n")
    repo.commit("attributes")
    repo.tag("v1")

    dest = tmp_path / "src"
    fetch(url=repo.url, ref="v1", commit=None, dest=dest, cache_dir=cache)
    assert (dest / "hidden" / "keep.txt").read_text() == "needed by the build\n"
    assert (dest / "version.txt").read_text() == "$Format:%H$ $Id$\n"
    assert (dest / "dos.txt").read_bytes() == b"line\r\n"


def test_export_into_an_existing_empty_folder(app: AppRepo, cache: Path, tmp_path: Path) -> None:
    dest = tmp_path / "src"
    dest.mkdir()
    fetch(url=app.url, ref="v2", commit=None, dest=dest, cache_dir=cache)
    assert "halo v2" in (dest / "app.py").read_text()


def test_export_refuses_a_non_empty_destination(app: AppRepo, cache: Path, tmp_path: Path) -> None:
    dest = tmp_path / "src"
    dest.mkdir()
    (dest / "mine.txt").write_text("keep me")
    with pytest.raises(WorkspaceError, match=re.escape(f"into {dest}: the folder is not empty")):
        fetch(url=app.url, ref="v2", commit=None, dest=dest, cache_dir=cache)
    assert [p.name for p in dest.iterdir()] == ["mine.txt"]


def test_failing_export_leaves_dest_absent(app: AppRepo, cache: Path, tmp_path: Path) -> None:
    resolved = resolve_ref(url=app.url, ref="v1", commit=None, cache_dir=cache)
    unknown = ResolvedRef(url=resolved.url, ref="v1", commit="0" * 40, mirror=resolved.mirror)
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "src"

    with pytest.raises(GitError) as err:
        export_tree(resolved=unknown, dest=dest)
    assert "0" * 40 in err.value.message
    assert list(out.iterdir()) == []


def test_a_blob_missing_from_the_mirror_is_reported(
    app: AppRepo, cache: Path, tmp_path: Path
) -> None:
    resolved = resolve_ref(url=app.url, ref="v1", commit=None, cache_dir=cache)
    blob = app.repo.git("rev-parse", f"{app.v1}:app.py")
    loose = resolved.mirror / "objects" / blob[:2] / blob[2:]
    assert loose.is_file()  # a fetch this small is stored as loose objects
    loose.unlink()
    out = tmp_path / "out"
    out.mkdir()

    with pytest.raises(WorkspaceError) as err:
        export_tree(resolved=resolved, dest=out / "src")
    assert app.v1 in err.value.message
    assert "app.py" in err.value.message
    assert str(resolved.mirror) in (err.value.hint or "")
    assert list(out.iterdir()) == []


def test_symlink_and_folder_with_one_name_cannot_escape(cache: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    repo = init_repo(tmp_path / "origin" / "hostile")
    repo.commit("base")
    evil = make_tree_commit(
        repo,
        [("120000", "a", str(outside)), ("040000", "a", ""), ("100644", "ok.txt", "fine\n")],
        "symlink and folder named a",
    )
    repo.branch("evil", at=evil)
    out = tmp_path / "out"
    out.mkdir()

    with pytest.raises(UnsafePathError) as err:
        fetch(url=repo.url, ref="evil", commit=None, dest=out / "src", cache_dir=cache)
    assert "'a'" in err.value.message
    assert list(outside.iterdir()) == []
    assert list(out.iterdir()) == []


def test_symlinks_pointing_outside_are_reproduced_not_followed(cache: Path, tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "origin" / "links")
    repo.symlink("etc-passwd", "/etc/passwd")
    repo.symlink("up", "../../..")
    repo.commit("links")
    dest = tmp_path / "src"
    fetch(url=repo.url, ref="main", commit=None, dest=dest, cache_dir=cache)
    assert os.readlink(dest / "etc-passwd") == "/etc/passwd"
    assert os.readlink(dest / "up") == "../../.."


# A git tree cannot name an absolute path (no '/' in an entry), a hard link or
# a device: what a hand-made tree can hold that a checkout must not write.
@pytest.mark.parametrize(
    ("entries", "fragment"),
    [
        ([("040000", "..", "")], "'..'"),
        ([("040000", ".", "")], "'.'"),
        ([("040000", ".git", "")], "'.git'"),
        ([("040000", ".GIT", "")], "'.git'"),
        ([("100644", ".git", "[core]\n")], "'.git'"),
        ([("100644", "f", "x\n"), ("100644", "f", "y\n")], "twice"),
        ([("100644", "a", "x\n"), ("040000", "a", "")], "also a folder"),
        ([("040000", "git~1", "")], "invalid path"),  # an NTFS alias of .git, refused by git
        ([("120000", ".gitmodules", "/etc/passwd")], "invalid path"),
    ],
)
def test_unsafe_trees_are_refused(
    cache: Path, tmp_path: Path, entries: list[tuple[str, str, str]], fragment: str
) -> None:
    repo = init_repo(tmp_path / "origin" / "hostile")
    repo.commit("base")
    evil = make_tree_commit(repo, [*entries, ("100644", "ok.txt", "fine\n")], "hostile")
    repo.branch("evil", at=evil)
    resolved = resolve_ref(url=repo.url, ref="evil", commit=None, cache_dir=cache)
    out = tmp_path / "out"
    out.mkdir()

    with pytest.raises(UnsafePathError) as err:
        export_tree(resolved=resolved, dest=out / "src")
    assert fragment in err.value.message
    assert list(out.iterdir()) == []  # nothing left, not even "../x" beside the destination


def test_a_submodule_becomes_an_empty_folder(cache: Path, tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "origin" / "super")
    other = repo.commit("base")
    blob = repo.git("hash-object", "-w", "--stdin", stdin="fine\n")
    tree = repo.git("mktree", stdin=f"160000 commit {other}\tvendor\n100644 blob {blob}\tok.txt\n")
    repo.branch("sub", at=repo.git("commit-tree", tree, "-m", "with a submodule"))
    dest = tmp_path / "src"
    fetch(url=repo.url, ref="sub", commit=None, dest=dest, cache_dir=cache)
    assert (dest / "vendor").is_dir()
    assert list((dest / "vendor").iterdir()) == []
    assert (dest / "ok.txt").read_text() == "fine\n"


def test_export_ignores_the_users_git_config(
    app: AppRepo, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "gitconfig"
    config.write_text(
        "[core]\n\tsymlinks = false\n\tsplitIndex = true\n\tsparseCheckout = true\n"
        "[submodule]\n\trecurse = true\n"
    )
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    dest = tmp_path / "src"
    resolved = resolve_ref(url=app.url, ref="v1", commit=None, cache_dir=cache)
    before = sorted(p.relative_to(resolved.mirror) for p in resolved.mirror.rglob("*"))
    export_tree(resolved=resolved, dest=dest)
    assert os.readlink(dest / "current-config") == "config/settings.toml.j2"
    assert (dest / "app.py").is_file()
    # No index, shared index or lock file lands in the mirror.
    assert sorted(p.relative_to(resolved.mirror) for p in resolved.mirror.rglob("*")) == before


def test_concurrent_exports_of_one_commit(app: AppRepo, cache: Path, tmp_path: Path) -> None:
    resolved = resolve_ref(url=app.url, ref="v1", commit=None, cache_dir=cache)
    dests = [tmp_path / f"src{n}" for n in range(4)]
    errors: list[BaseException] = []

    def work(dest: Path) -> None:
        try:
            export_tree(resolved=resolved, dest=dest)
        except BaseException as exc:  # collected, re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(dest,)) for dest in dests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    for dest in dests:
        assert "halo v1" in (dest / "app.py").read_text()


# --- the cache ----------------------------------------------------------------


def test_second_fetch_reuses_the_mirror(app: AppRepo, cache: Path, tmp_path: Path) -> None:
    first = fetch(url=app.url, ref="v1", commit=None, dest=tmp_path / "a", cache_dir=cache)
    mirrors = sorted((cache / "git").glob("*.git"))
    assert len(mirrors) == 1
    assert mirrors[0].name.startswith("civic-app-")
    fetched = _fetch_head_stamp(cache)

    time.sleep(0.01)  # a second fetch would leave a newer stamp
    resolved = resolve_ref(url=app.url, ref="v1", commit=app.v1, cache_dir=cache)
    assert resolved.mirror == mirrors[0]
    assert _fetch_head_stamp(cache) == fetched

    shutil.rmtree(app.path)  # the origin is gone: the export needs only the mirror
    second = export_tree(resolved=resolved, dest=tmp_path / "b")
    assert second.commit == first.commit
    assert (tmp_path / "b" / "app.py").read_text() == (tmp_path / "a" / "app.py").read_text()

    with pytest.raises(GitError) as err:
        resolve_ref(url=app.url, ref="v1", commit=None, cache_dir=cache)
    assert app.url in err.value.message
    assert sorted((cache / "git").glob("*.git")) == mirrors


def test_mirror_is_shallow_and_holds_only_fetched_refs(app: AppRepo, cache: Path) -> None:
    resolved = resolve_ref(url=app.url, ref="v2", commit=None, cache_dir=cache)
    refs = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname)"],
        cwd=resolved.mirror,
        env=git_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert refs == ["refs/smartshare/" + b"v2".hex()]
    assert (resolved.mirror / "shallow").read_text().split() == [app.v2]


def test_a_broken_mirror_is_rebuilt(app: AppRepo, cache: Path) -> None:
    mirror = mirror_path(cache_dir=cache, url=app.url)
    mirror.mkdir(parents=True)
    (mirror / "leftover").write_text("interrupted init")
    assert resolve_ref(url=app.url, ref="v1", commit=None, cache_dir=cache).commit == app.v1
    assert not (mirror / "leftover").exists()


def test_rewrites_use_the_local_copy_but_record_the_original_url(
    app: AppRepo, cache: Path, tmp_path: Path
) -> None:
    url = "https://git.tangerangkota.go.id/apps/civic-app"
    rewrites = {
        "https://git.tangerangkota.go.id/": "file:///nonexistent/",
        "https://git.tangerangkota.go.id/apps/": app.path.parent.as_uri() + "/",
    }
    fetched = fetch(
        url=url, ref="v1", commit=app.v1, dest=tmp_path / "src", cache_dir=cache, rewrites=rewrites
    )
    assert fetched.url == url
    assert fetched.commit == app.v1
    assert mirror_path(cache_dir=cache, url=url).is_dir()


def test_failed_rewritten_fetch_names_both_urls(cache: Path, tmp_path: Path) -> None:
    url = "https://git.tangerangkota.go.id/apps/civic-app"
    with pytest.raises(GitError) as err:
        resolve_ref(
            url=url,
            ref="v1",
            commit=None,
            cache_dir=cache,
            rewrites={"https://git.tangerangkota.go.id/": (tmp_path / "gone").as_uri() + "/"},
        )
    assert url in err.value.message
    assert "gone" in err.value.message


def test_concurrent_resolves_of_one_repository(app: AppRepo, cache: Path) -> None:
    refs = ["v1", "v2", "develop", "v1", "main", "v2"]
    barrier = threading.Barrier(len(refs))
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def work(index: int, ref: str) -> None:
        try:
            barrier.wait()
            results[index] = resolve_ref(url=app.url, ref=ref, commit=None, cache_dir=cache).commit
        except BaseException as exc:  # collected, re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=item) for item in enumerate(refs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    expected = {"v1": app.v1, "v2": app.v2, "develop": app.develop, "main": app.v2}
    assert results == {index: expected[ref] for index, ref in enumerate(refs)}
    assert len(list((cache / "git").glob("*.git"))) == 1


def test_mirror_path_is_readable_and_distinct(tmp_path: Path) -> None:
    one = mirror_path(cache_dir=tmp_path, url="https://forge.example/a/civic-app.git")
    two = mirror_path(cache_dir=tmp_path, url="https://other.example/a/civic-app.git")
    scp = mirror_path(cache_dir=tmp_path, url="git@forge.example:civic-app")
    assert one.parent == tmp_path / "git"
    assert one.name.startswith("civic-app-")
    assert two.name.startswith("civic-app-")
    assert one != two
    assert scp.name.startswith("civic-app-")


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SMARTSHARE_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("SMARTSHARE_CACHE_DIR")
    assert default_cache_dir() == tmp_path / "xdg" / "smartshare"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "smartshare"
