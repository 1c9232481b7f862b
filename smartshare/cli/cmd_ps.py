"""``smartshare ps``: each container of the deployed stack, as it runs now."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from smartshare.cli.options import DEFAULT_WORKSPACE, ListFormat, WorkspaceOption

if TYPE_CHECKING:
    from smartshare.deploying.inspect import ServiceStatus


def ps_command(
    workspace: WorkspaceOption = DEFAULT_WORKSPACE,
    output: Annotated[ListFormat, typer.Option("--format", "-f", help="Output format.")] = (
        ListFormat.TABLE
    ),
) -> None:
    """Show each deployed service: state, health, address, image against the deployed one."""
    from smartshare.console import Row, get_console
    from smartshare.deploying.inspect import ps
    from smartshare.deploying.labels import JOB

    console = get_console()
    result = ps(workspace=workspace)
    if output is ListFormat.JSON:
        console.json(result.as_dict())
        return
    if result.project is None:
        console.line(f"Nothing is deployed from {workspace}.")
        return
    # As deploy shows it: no App column (a stack name starts with its app's), "job" only.
    console.table(
        ["Service", "Kind", "State", "Published", "Drift"],
        [
            Row(
                cells=[
                    s.service,
                    "job" if s.kind == JOB else "",
                    _state(s),
                    ", ".join(s.published),
                    "drifted" if s.drift else "none",
                ],
                details=_details(s),
            )
            for s in result.services
        ],
        title=f"Project '{result.project}' ({result.target}), deployed {result.deployed_at or '-'}",
    )


def _state(service: ServiceStatus) -> str:
    if service.state == "exited":
        return f"exited ({service.exit_code})"
    return f"{service.state} ({service.health})" if service.health else service.state


def _details(service: ServiceStatus) -> list[tuple[str, str]]:
    if service.drift is None:
        return []
    details = [("drift", service.drift)]
    if service.image_id and service.image_id != service.deployed_image_id:
        deployed = (service.deployed_image_id or "none recorded")[:19]
        details.append(("image", f"runs {service.image_id[:19]}, deployed {deployed}"))
    return details


def register(app: typer.Typer) -> None:
    app.command("ps")(ps_command)
