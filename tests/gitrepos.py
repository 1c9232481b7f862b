"""Build real git repositories in a test's tmp_path.

The helpers call the git binary with a fixed identity and without the user's
global or system configuration, so they behave the same on a developer's
machine and on a CI runner with no git identity at all.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Smartshare Test",
    "GIT_AUTHOR_EMAIL": "test@smartshare.invalid",
    "GIT_COMMITTER_NAME": "Smartshare Test",
    "GIT_COMMITTER_EMAIL": "test@smartshare.invalid",
}


def git_env() -> dict[str, str]:
    """Environment for the helpers' own git calls: fixed identity, no user config."""
    env = dict(os.environ)
    env.update(GIT_IDENTITY)
    env["GIT_CONFIG_GLOBAL"] = os.devnull
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    env["GIT_TERMINAL_PROMPT"] = "0"
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_CONFIG_COUNT"):
        env.pop(name, None)
    return env


def run_git(cwd: Path, *args: str, stdin: str | None = None, check: bool = True) -> str:
    """Run git in ``cwd`` and return its stripped stdout; fail loudly on error.

    With ``check=False`` a failure returns stdout (usually empty) instead.
    """
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=git_env(),
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result.stdout.strip()


@dataclass(frozen=True)
class GitRepo:
    """A non-bare repository with a work tree, on branch ``main`` by default."""

    path: Path

    @property
    def url(self) -> str:
        """The repository as a plain local path."""
        return str(self.path)

    @property
    def file_url(self) -> str:
        """The repository as a ``file://`` URL."""
        return self.path.as_uri()

    def git(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        return run_git(self.path, *args, stdin=stdin, check=check)

    def write(self, relpath: str, content: str = "", *, executable: bool = False) -> Path:
        """Write a file (creating folders) in the work tree; not yet committed."""
        target = self.path / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        target.chmod(0o755 if executable else 0o644)
        return target

    def symlink(self, relpath: str, link_target: str) -> Path:
        """Create a symlink in the work tree pointing at ``link_target`` (as written)."""
        target = self.path / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        target.symlink_to(link_target)
        return target

    def remove(self, relpath: str) -> None:
        self.git("rm", "-q", "-r", "--", relpath)

    def commit(self, message: str = "change", *, files: Mapping[str, str] | None = None) -> str:
        """Write ``files`` (if any), commit everything, return the new commit id."""
        for relpath, content in (files or {}).items():
            self.write(relpath, content)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "--no-gpg-sign", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.rev("HEAD")

    def rev(self, ref: str) -> str:
        """The commit id ``ref`` points at (tags peeled)."""
        return self.git("rev-parse", "--verify", f"{ref}^{{commit}}")

    def tag(self, name: str, *, at: str = "HEAD", annotated: bool = False) -> str:
        """Create a tag; return the commit id it points at."""
        if annotated:
            self.git("tag", "-a", "-m", f"release {name}", name, at)
        else:
            self.git("tag", name, at)
        return self.rev(name)

    def move_tag(self, name: str, *, to: str = "HEAD", annotated: bool = False) -> str:
        """Force a tag onto another commit (what a careless publisher does)."""
        if annotated:
            self.git("tag", "-f", "-a", "-m", f"moved {name}", name, to)
        else:
            self.git("tag", "-f", name, to)
        return self.rev(name)

    def branch(self, name: str, *, at: str = "HEAD") -> str:
        """Create or reset a branch without checking it out."""
        self.git("branch", "-f", name, at)
        return self.rev(name)

    def checkout(self, name: str) -> None:
        self.git("checkout", "-q", name)

    def rewind(self, branch: str, to: str) -> str:
        """Reset ``branch`` to an older commit (a force-push upstream)."""
        if self.git("symbolic-ref", "--short", "HEAD") == branch:
            self.git("reset", "-q", "--hard", to)
        else:
            self.git("branch", "-f", branch, to)
        return self.rev(branch)


def init_repo(path: Path, *, branch: str = "main") -> GitRepo:
    """An empty repository at ``path`` on ``branch``."""
    path.mkdir(parents=True, exist_ok=True)
    run_git(path, "init", "-q", "-b", branch)
    # Repository config, so later commits work whatever the caller's environment.
    for key, value in (
        ("user.name", GIT_IDENTITY["GIT_AUTHOR_NAME"]),
        ("user.email", GIT_IDENTITY["GIT_AUTHOR_EMAIL"]),
        ("commit.gpgsign", "false"),
        ("tag.gpgsign", "false"),
        ("core.autocrlf", "false"),
    ):
        run_git(path, "config", key, value)
    return GitRepo(path)


@dataclass(frozen=True)
class AppRepo:
    """A small app repository with the history the git tests need.

    ``main`` has two commits: ``v1`` is an annotated tag on the first, ``v2`` a
    lightweight tag on the second, and branch ``develop`` has one commit more.
    """

    repo: GitRepo
    v1: str  # commit of tag v1 (annotated)
    v2: str  # commit of tag v2 (lightweight) and of main
    develop: str  # commit of branch develop

    @property
    def url(self) -> str:
        return self.repo.url

    @property
    def path(self) -> Path:
        return self.repo.path


def make_app_repo(path: Path) -> AppRepo:
    """Create the standard app repository described in :class:`AppRepo`."""
    repo = init_repo(path)
    repo.write("Dockerfile", 'FROM python:3.12-slim\nCOPY . /app\nCMD ["/app/run.sh"]\n')
    repo.write("run.sh", "#!/bin/sh\nexec python /app/app.py\n", executable=True)
    repo.write("app.py", "print('halo v1')\n")
    repo.write("config/settings.toml.j2", "region = '{{ region.name }}'\n")
    repo.symlink("current-config", "config/settings.toml.j2")
    repo.commit("first release")
    v1 = repo.tag("v1", annotated=True)

    repo.write("app.py", "print('halo v2')\n")
    repo.commit("second release")
    v2 = repo.tag("v2")

    repo.git("checkout", "-q", "-b", "develop")
    repo.write("app.py", "print('halo develop')\n")
    develop = repo.commit("work in progress")
    repo.checkout("main")
    return AppRepo(repo=repo, v1=v1, v2=v2, develop=develop)


def make_tree_commit(repo: GitRepo, entries: list[tuple[str, str, str]], message: str) -> str:
    """Commit a tree built by hand with ``git mktree``; return the commit id.

    ``entries`` are ``(mode, name, content)``: mode ``100644``/``100755`` for
    files, ``120000`` for a symlink (content is its target), ``040000`` for a
    folder (content is ignored; it holds one file ``x``).  git mktree accepts
    trees that git itself never writes, e.g. a symlink and a folder of the same
    name, which is how hostile repositories are reproduced.
    """
    lines = []
    for mode, name, content in entries:
        if mode == "040000":
            blob = repo.git("hash-object", "-w", "--stdin", stdin="inside\n")
            sha = repo.git("mktree", stdin=f"100644 blob {blob}\tx\n")
            lines.append(f"040000 tree {sha}\t{name}")
        else:
            sha = repo.git("hash-object", "-w", "--stdin", stdin=content)
            lines.append(f"{mode} blob {sha}\t{name}")
    tree = repo.git("mktree", stdin="\n".join(lines) + "\n")
    return repo.git("commit-tree", tree, "-m", message)
