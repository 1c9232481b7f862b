"""The ``smartshare`` command line: thin commands over the core modules.

Each command parses its options, calls one core function with keyword
arguments and renders the result.  Core modules are imported inside the
commands so that ``smartshare --help`` stays fast.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from smartshare import __version__
from smartshare.errors import ExitCode, SmartshareError


class SmartshareGroup(TyperGroup):
    """Turns a SmartshareError into a message on stderr and its named exit code."""

    def invoke(self, ctx: Any) -> Any:  # typer vendors click; its Context type is private
        from smartshare.console import get_console

        try:
            return super().invoke(ctx)
        except SmartshareError as exc:
            get_console().error(exc)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            get_console().info("interrupted")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None


app = typer.Typer(
    cls=SmartshareGroup,
    name="smartshare",
    help="Share a region's apps; adopt them in another region, in one command.",
    no_args_is_help=True,
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
    from smartshare.cli import cmd_list, cmd_schema, cmd_show, cmd_validate

    for module in (cmd_list, cmd_show, cmd_validate, cmd_schema):
        module.register(app)
    try:
        from smartshare.cli import cmd_adopt
    except ImportError:  # pragma: no cover - adopt lands separately
        return
    cmd_adopt.register(app)


_register()


def main() -> None:
    """Console-script entry point."""
    app(prog_name="smartshare")
