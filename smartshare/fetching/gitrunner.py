"""The one way smartshare runs git: environment, credentials, timeouts, redacted output.

Every git process of :mod:`.mirror` and :mod:`.export` starts here.  git never
prompts, never runs unsafe transports, and credentials only travel in the
environment of the git process (``SMARTSHARE_GIT_TOKEN``, sent as an HTTP
header scoped to the remote's host), never in argv or a config file; what git
prints is redacted before it reaches a message.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from smartshare.errors import GitError, WorkspaceError
from smartshare.fetching.urls import redact_text

TOKEN_ENV = "SMARTSHARE_GIT_TOKEN"  # noqa: S105 - the name of a variable, not a secret
USERNAME_ENV = "SMARTSHARE_GIT_USERNAME"
DEFAULT_TOKEN_USERNAME = "oauth2"  # noqa: S105 - what GitLab/Gitea accept with a token
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


def fetch_env(remote: str) -> dict[str, str]:
    """:func:`base_env` plus the token as an HTTP header for https remotes.

    The header goes through GIT_CONFIG_* variables: it reaches git without
    appearing in argv (visible to every user in ps) or in any config file, and
    it is scoped to the remote's host so a redirect elsewhere does not carry it.
    """
    env = base_env()
    token = os.environ.get(TOKEN_ENV, "")
    parts = urlsplit(remote)
    if not token or parts.scheme.lower() != "https" or not parts.hostname:
        return env
    username = os.environ.get(USERNAME_ENV) or DEFAULT_TOKEN_USERNAME
    basic = base64.b64encode(f"{username}:{token}".encode()).decode("ascii")
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    count = os.environ.get("GIT_CONFIG_COUNT", "")
    index = int(count) if count.isdigit() else 0
    env[f"GIT_CONFIG_KEY_{index}"] = f"http.https://{host}/.extraHeader"
    env[f"GIT_CONFIG_VALUE_{index}"] = f"Authorization: Basic {basic}"
    env["GIT_CONFIG_COUNT"] = str(index + 1)
    return env


def run_git(
    args: Sequence[str],
    *,
    git_dir: Path,
    env: Mapping[str, str],
    timeout: float,
    umask: int = -1,
    query: bool = False,
) -> tuple[int, str, str]:
    """Run git on the repository ``git_dir``; return (status, stdout, stderr).

    A timeout kills git and its children.  The repository is named explicitly:
    run from a git hook, the inherited GIT_DIR (or object directory) would
    otherwise point git at another repository.  ``umask`` is set in the child
    only (-1: inherited): the process-wide one is shared with other threads.

    Fetches and exports go through GitPython.  A ``query`` (``rev-parse``,
    ``ls-remote``: it only reads) runs git directly, because importing
    GitPython costs more than a whole no-op run spends on git; the process is
    the same, with the same environment, timeout and kill.
    """
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
    cwd = git_dir if git_dir.is_dir() else git_dir.parent
    if query:
        return _run_query([f"--git-dir={git_dir}", *args], cwd=cwd, env=env, timeout=timeout)
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
    return int(status), stdout, str(err)


_NO_GIT_HINT = "install git (e.g. apt-get install git) or set GIT_PYTHON_GIT_EXECUTABLE"


def _run_query(
    args: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float
) -> tuple[int, str, str]:
    """:func:`run_git` without GitPython, answering as GitPython's ``execute`` does."""
    executable = os.environ.get("GIT_PYTHON_GIT_EXECUTABLE") or "git"
    try:
        process = subprocess.Popen(
            [executable, *args],
            cwd=cwd,
            # As GitPython runs git: English messages, whatever the user's locale.
            env={**os.environ, "LANGUAGE": "C", "LC_ALL": "C", **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Its own process group, so that a timeout also stops what git
            # started (ssh, a remote helper), which would hold the pipes open.
            start_new_session=True,
        )
    except OSError as exc:
        raise GitError("git is not available", hint=_NO_GIT_HINT) from exc
    try:
        out, err = process.communicate(timeout=timeout)
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
    return process.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


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
    token = os.environ.get(TOKEN_ENV, "")
    if token:
        username = os.environ.get(USERNAME_ENV) or DEFAULT_TOKEN_USERNAME
        basic = base64.b64encode(f"{username}:{token}".encode()).decode("ascii")
        text = text.replace(basic, "***").replace(token, "***")
    return text


def workspace_error(what: str, exc: OSError, *, hint: str | None = None) -> WorkspaceError:
    """A disk failure of the mirror or an export (``what``: what could not be done)."""
    return WorkspaceError(
        f"{what}: {exc.strerror or exc}",
        hint=hint or "check free disk space and the permissions of the folder",
    )
