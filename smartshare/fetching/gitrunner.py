"""The one way smartshare runs git: environment, credentials, timeouts, redacted output.

Every git process of :mod:`.mirror` and :mod:`.export` starts here.  git never
prompts, never runs unsafe transports, and credentials only travel in the
environment of the git process (a token, sent as an HTTP header scoped to the
remote's host, and only to a host the user configured for it: see
:mod:`.credentials`), never in argv or a config file; what git prints is
redacted before it reaches a message.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from smartshare.errors import GitError, WorkspaceError
from smartshare.fetching.credentials import (
    HostCredential,
    credential_for,
    https_host,
    known_tokens,
)
from smartshare.fetching.urls import redact_text

DEFAULT_TIMEOUT = 300.0


def base_env() -> dict[str, str]:
    """Environment for every git call: never prompt, never hang on a dead link."""
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_HTTP_LOW_SPEED_LIMIT": "1000",
        "GIT_HTTP_LOW_SPEED_TIME": "30",
        # The manifest check already refuses other transports; this also covers
        # redirects and anything git would reach on its own.
        "GIT_ALLOW_PROTOCOL": os.environ.get("GIT_ALLOW_PROTOCOL") or "https:ssh:file",
    }
    if "GIT_SSH_COMMAND" not in os.environ and "GIT_SSH" not in os.environ:
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"
    return env


def fetch_env(remote: str, credentials: Sequence[HostCredential] = ()) -> dict[str, str]:
    """:func:`base_env`, plus a token as an HTTP header when ``remote``'s host has one.

    ``remote`` is the URL git fetches (after any rewrite); whether its host
    gets a token is :func:`.credentials.credential_for`'s to say.  The header
    goes through GIT_CONFIG_* variables: it reaches git without appearing in
    argv (visible to every user in ps) or in any config file, and it is
    scoped to the remote's host so a redirect elsewhere does not carry it.
    """
    env = base_env()
    credential = credential_for(remote, credentials)
    host = https_host(remote)
    if credential is None or host is None:
        return env
    username, token = credential
    basic = base64.b64encode(f"{username}:{token}".encode()).decode("ascii")
    count = os.environ.get("GIT_CONFIG_COUNT", "")
    index = int(count) if count.isdigit() else 0
    scoped = {
        f"http.https://{host}/.extraHeader": f"Authorization: Basic {basic}",
        # git sends its extra headers on every request of a fetch, also to the
        # host a redirect named (it takes the redirected URL as its base): with
        # a token, a redirect is an error, never a way to another host.
        f"http.https://{host}/.followRedirects": "false",
    }
    for offset, (key, value) in enumerate(scoped.items()):
        env[f"GIT_CONFIG_KEY_{index + offset}"] = key
        env[f"GIT_CONFIG_VALUE_{index + offset}"] = value
    env["GIT_CONFIG_COUNT"] = str(index + len(scoped))
    return env


def run_git(
    args: Sequence[str],
    *,
    git_dir: Path,
    env: Mapping[str, str],
    timeout: float,
    umask: int = -1,
    query: bool = False,
    cwd: Path | None = None,
    work_tree: Path | None = None,
    stdin: str | None = None,
    encoding: str = "utf-8",
) -> tuple[int, str, str]:
    """Run git on the repository ``git_dir``; return (status, stdout, stderr).

    A timeout kills git and its children.  The repository is named explicitly:
    run from a git hook, the inherited GIT_DIR (or object directory) would
    otherwise point git at another repository.  ``umask`` is set in the child
    only (-1: inherited): the process-wide one is shared with other threads.
    ``cwd`` (default: the repository) is where git runs: a command that acts
    on a work tree (``apply``) must run at the top of that work tree, or it
    resolves the patch's paths against the folder it runs in.

    Fetches and exports go through GitPython.  A ``query`` (``rev-parse``,
    ``ls-remote``: it only reads) runs git directly, because importing
    GitPython costs more than a whole no-op run spends on git; the process is
    the same, with the same environment, timeout and kill.  A query may name
    a ``work_tree`` (run there, pathspecs relative to it), give git its
    ``stdin`` and read its output in another ``encoding`` (``latin-1``: the
    bytes as they are, for file contents).
    """
    if (work_tree is not None or stdin is not None) and not query:
        raise ValueError("work_tree and stdin are for queries")
    git_dir = git_dir.absolute()
    # Inherited location variables would point git elsewhere: neutralise them.
    located = {
        "GIT_OBJECT_DIRECTORY": str(git_dir / "objects"),
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": "",
        "GIT_COMMON_DIR": str(git_dir),
        "GIT_NAMESPACE": "",
    }
    env = {
        **{name: value for name, value in located.items() if name in os.environ},
        **env,
        "GIT_DIR": str(git_dir),
    }
    if cwd is None:
        cwd = git_dir if git_dir.is_dir() else git_dir.parent
    if work_tree is not None:
        env["GIT_WORK_TREE"] = str(work_tree.absolute())
        cwd = work_tree
    if query:
        status, out, err = _run_query(
            [f"--git-dir={git_dir}", *args],
            cwd=cwd,
            env=env,
            timeout=timeout,
            stdin=stdin,
            encoding=encoding,
        )
        return status, _without_credentials(out, env), _without_credentials(err, env)
    try:
        import git
    except ImportError as exc:  # GitPython refuses to import when no git binary is found
        raise GitError("git is not available", hint=_NO_GIT_HINT) from exc
    runner = git.Git(str(cwd))
    command = [str(git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git"), f"--git-dir={git_dir}", *args]
    try:
        status, out, err = runner.execute(
            command,
            env=dict(env),
            kill_after_timeout=timeout,
            with_extended_output=True,
            with_exceptions=False,
            umask=umask,
        )
    except git.exc.GitCommandNotFound as exc:
        raise GitError("git is not available", hint=_NO_GIT_HINT) from exc
    stdout = out.decode("utf-8", "replace") if isinstance(out, bytes) else str(out)
    return int(status), _without_credentials(stdout, env), _without_credentials(str(err), env)


def _without_credentials(text: str, env: Mapping[str, str]) -> str:
    """``text`` with any credential given to git in ``env`` replaced by ``***``."""
    for name, value in env.items():
        if not name.startswith("GIT_CONFIG_VALUE_"):
            continue
        scheme, _, encoded = value.removeprefix("Authorization:").strip().partition(" ")
        if scheme.lower() != "basic" or not encoded:
            continue
        try:
            decoded = base64.b64decode(encoded).decode("utf-8")
        except ValueError:
            decoded = ""
        token = decoded.partition(":")[2]
        for secret in (encoded, decoded, token):
            if secret:
                text = text.replace(secret, "***")
    return text


_NO_GIT_HINT = "install git (e.g. apt-get install git) or set GIT_PYTHON_GIT_EXECUTABLE"


# Variables that point git at a repository (set in a git hook, for one): a
# repository is found from a folder only without them.
_LOCATION_VARIABLES = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
        "GIT_PREFIX",
    }
)


def find_repository(
    folder: Path, *, revision: str | None = None, timeout: float = 30.0
) -> tuple[Path, Path, str | None]:
    """The git directory and the top of the working tree that ``folder`` belongs to.

    With ``revision``, also the object it names there (None when it names
    none), in the same git process.  Raises GitError with git's reason when
    ``folder`` is in no working tree.
    """
    inherited = {k: v for k, v in os.environ.items() if k not in _LOCATION_VARIABLES}
    args = ["rev-parse", "--absolute-git-dir", "--show-toplevel"]
    if revision is not None:
        args += ["--verify", "--quiet", revision]
    status, out, err = _run_query(
        args, cwd=folder, env=base_env(), timeout=timeout, inherited=inherited
    )
    lines = out.splitlines()
    if len(lines) < 2 or (revision is None and status != 0):
        raise GitError(git_reason(err) if err.strip() else "not in a git working tree")
    resolved = lines[2].strip() if status == 0 and len(lines) == 3 else None
    return Path(lines[0]), Path(lines[1]), resolved or None


def _run_query(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    stdin: str | None = None,
    inherited: Mapping[str, str] | None = None,
    encoding: str = "utf-8",
) -> tuple[int, str, str]:
    """:func:`run_git` without GitPython, answering as GitPython's ``execute`` does."""
    executable = os.environ.get("GIT_PYTHON_GIT_EXECUTABLE") or "git"
    base = os.environ if inherited is None else inherited
    try:
        process = subprocess.Popen(
            [executable, *args],
            cwd=cwd,
            # As GitPython runs git: English messages, whatever the user's locale.
            env={**base, "LANGUAGE": "C", "LC_ALL": "C", **env},
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Its own process group, so that a timeout also stops what git
            # started (ssh, a remote helper), which would hold the pipes open.
            start_new_session=True,
        )
    except OSError as exc:
        raise GitError("git is not available", hint=_NO_GIT_HINT) from exc
    try:
        out, err = process.communicate(
            None if stdin is None else stdin.encode("utf-8", "surrogateescape"), timeout=timeout
        )
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return -9, "", f"Timeout: git {args[1]} did not complete in {timeout:g} s"
    except BaseException:  # Ctrl-C: do not leave git running behind
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    return process.returncode, out.decode(encoding, "replace"), err.decode("utf-8", "replace")


def git_reason(err: str, *urls: str) -> str:
    """The telling line of git's stderr, without credentials."""
    lines = [line.strip() for line in err.splitlines() if line.strip()]
    telling = next(
        (line for line in lines if line.startswith(("fatal:", "error:"))),
        lines[0] if lines else "git failed without saying why",
    )
    for prefix in ("fatal: ", "error: "):
        telling = telling.removeprefix(prefix)
    return _redact(telling, *urls)


def _redact(text: str, *urls: str) -> str:
    for url in urls:
        text = redact_text(text, url)
    # run_git already took out what it sent; a token set but not sent must not show either.
    for token in known_tokens():
        text = text.replace(token, "***")
    return text


def workspace_error(what: str, exc: OSError, *, hint: str | None = None) -> WorkspaceError:
    """A disk failure of the mirror or an export (``what``: what could not be done)."""
    return WorkspaceError(
        f"{what}: {exc.strerror or exc}",
        hint=hint or "check free disk space and the permissions of the folder",
    )
