"""The one error hierarchy of smartshare.

Every error a user can cause or fix derives from :class:`SmartshareError`.  It
carries a message, an optional hint (what to do next) and the exit code the CLI
uses.  Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smartshare.catalog.diagnostics import Problem


class ExitCode(IntEnum):
    """Exit codes, named in one place (documented in the README)."""

    OK = 0
    INVALID_INPUT = 1
    USAGE = 2
    EXTERNAL_FAILURE = 3
    INTERRUPTED = 130


class SmartshareError(Exception):
    """Root of every user-facing error."""

    exit_code: ExitCode = ExitCode.INVALID_INPUT

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(SmartshareError):
    """The command line itself is wrong (unknown app, bad --set syntax...)."""

    exit_code = ExitCode.USAGE


class InvalidInputError(SmartshareError):
    """A manifest, region profile, template or value is wrong."""

    exit_code = ExitCode.INVALID_INPUT

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        problems: Sequence[Problem] = (),
    ) -> None:
        super().__init__(message, hint=hint)
        self.problems = list(problems)


class CatalogNotFoundError(UsageError):
    """The catalogue folder (--catalog, SMARTSHARE_CATALOG) does not exist or has no manifests."""


class UnknownAppError(UsageError):
    """An app name that the catalogue does not hold."""


class SecretResolutionError(InvalidInputError):
    """A secret reference (env:NAME or file:PATH) cannot be resolved."""


class TemplateRenderError(InvalidInputError):
    """A template failed to render (undefined value, sandbox violation...)."""


class OutputSchemaError(TemplateRenderError):
    """A rendered file does not satisfy its template's JSON Schema (or the schema is unusable)."""


class UnsafePathError(InvalidInputError):
    """A path would leave the folder it must stay in."""


class ExternalError(SmartshareError):
    """An external tool or service failed (git, Docker engine, registry, disk)."""

    exit_code = ExitCode.EXTERNAL_FAILURE


class GitError(ExternalError):
    """A git operation failed: unreachable repository, missing ref or commit."""


class PinnedCommitMismatchError(GitError):
    """The ref resolves to another commit than the one the manifest pins."""


class EngineUnavailableError(ExternalError):
    """No Docker engine could be reached."""


class BuildError(ExternalError):
    """An image build failed."""


class PushError(ExternalError):
    """The registry refused a push."""


class PullError(ExternalError):
    """An image could not be pulled (a missing image, an unreachable registry or mirror)."""


class ToolUnavailableError(ExternalError):
    """A tool smartshare runs is missing or too old (Docker Compose v2...)."""


class DeployFailedError(ExternalError):
    """A service or job of the stack did not become ready (or a port was taken)."""


class WorkspaceError(ExternalError):
    """The workspace cannot be read or written (disk full, permissions...)."""


class AdoptionFailedError(ExternalError):
    """One or more apps failed to adopt; the others were recorded."""


class InterruptedRunError(SmartshareError):
    """The run was interrupted (Ctrl-C or SIGTERM); what finished is recorded."""

    exit_code = ExitCode.INTERRUPTED
