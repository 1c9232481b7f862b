"""The ``smartshare`` command line: thin commands over the core modules.

Each command parses its options, calls one core function with keyword
arguments and renders the result.  Core modules are imported inside the
commands so that ``smartshare --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from smartshare import __version__
from smartshare.errors import ExitCode, SmartshareError


class SmartshareGroup(TyperGroup):
    """Turns a SmartshareError into a message on stderr and its named exit code."""

    def invoke(self, ctx: Any) -> Any:  # typer vendors click; its Context type is private
        from smartshare.console import get_console, new_console

        new_console()  # each command reads the terminal's width afresh
        try:
            return super().invoke(ctx)
        except SmartshareError as exc:
            get_console().error(exc)
            raise typer.Exit(int(exc.exit_code)) from None
        except typer.BadParameter as exc:
            # typer checks a choice (--format) with pydantic, whose prefix says nothing.
            exc.message = exc.message.removeprefix("Value error, ")
            raise
        except KeyboardInterrupt:
            get_console().info("interrupted")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None


app = typer.Typer(
    cls=SmartshareGroup,
    name="smartshare",
    help="Share a region's apps; adopt them in another region, in one command.",
    no_args_is_help=True,
    # click's plain help: flags read as flags ("--no-build", not "--no-build <bool>"),
    # folded to the terminal's width (80 columns at most).
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"smartshare {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show details (build logs...)."),
) -> None:
    """Share a region's apps; adopt them in another region, in one command."""
    if verbose:
        from smartshare.console import get_console

        get_console().verbose = True


def _register() -> None:
    from smartshare.cli import (
        cmd_adopt,
        cmd_deploy,
        cmd_down,
        cmd_list,
        cmd_plan,
        cmd_ps,
        cmd_schema,
        cmd_show,
        cmd_status,
        cmd_validate,
    )

    for module in (
        cmd_list,
        cmd_show,
        cmd_validate,
        cmd_schema,
        cmd_plan,
        cmd_adopt,
        cmd_status,
        cmd_deploy,
        cmd_ps,
        cmd_down,
    ):
        module.register(app)


_register()


def main() -> None:
    """Console-script entry point."""
    # pydantic looks for plugins (observability hooks) in every installed
    # package's entry points when the first model is built: about 25 ms of
    # each run, for hooks a command-line tool has no use for.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        app(prog_name="smartshare")
    except SystemExit as exc:
        _exit(exc.code)


def _exit(code: object) -> NoReturn:
    """End the process as soon as the output is out.

    Every file smartshare writes is complete (atomic writes) and every worker
    has finished by now; what the interpreter's own shutdown would add is
    freeing every object one by one, about 0.2 s after a no-op adopt.
    """
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed, or a reader that went away
            code = code or 1
    os._exit(code or 0)
