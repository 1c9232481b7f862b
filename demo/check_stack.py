"""Checks the demo runs against the stack ``smartshare deploy`` started.

Usage: check_stack.py COMMAND ARGS...  (each command exits 1, saying why, when its check fails)

  address WORKSPACE SERVICE        print HOST:PORT where the service (laksa-web) is published
  page URL TEXT                    the page at URL says TEXT (and show its title and region)
  says URL TEXT                    the page at URL says TEXT (and show the line saying it)
  logo URL FILE                    the page at URL shows a logo, served as the bytes of FILE
  complain URL TICKETS             send a complaint to LAKSA at URL, print its ticket and
                                   write it to the file TICKETS
  listed URL TICKET                LAKSA at URL lists the complaint TICKET
  json URL KEY=VALUE...            the JSON at URL has each KEY with VALUE (JSON: true, "x")
  healthy WORKSPACE [APP...]       every container of the deployed stack is running and
                                   healthy (a job: completed), and each APP is in the stack
  up-to-date                       the ``deploy --format json`` on stdin changed nothing
  restart WORKSPACE SERVICE        restart the service's container (docker restart) and wait
                                   until it is healthy again
  mirror REGISTRY IMAGE            make REGISTRY/dockerhub/library/ a mirror holding IMAGE
                                   (busybox:1.36): push it there unless it is there already,
                                   and keep no local copy under that name, so that deploy
                                   pulls it through the mirror rule
  adopted WORKSPACE APP...         print each APP adopted in WORKSPACE with its version
                                   ("laksa 2.4.0", one a line; nothing without a lock)
  adoption WORKSPACE APP VERSION   print the id of APP's newest adoption of VERSION
                                   ('smartshare history'), for 'rollback --to'

``json`` also fails when the answer shows one of the demo's made-up secrets (the
files of the folder SMARTSHARE_DEMO_SECRETS names).  Only Python's standard
library, smartshare's command line and (for ``restart`` and ``mirror``) the
docker package smartshare installs are used.
"""

from __future__ import annotations

import html
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

# No proxy: whatever the environment names cannot reach this machine's 127.0.0.1.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
COMPLAINT = {
    "nama": "Demo smartshare",
    "kontak": "demo@badungkab.go.id",
    "kategori": "Kebersihan dan Lingkungan",
    "isi": "Sampah menumpuk di tepi jalan menuju Pantai Kuta (contoh dari demo smartshare).",
}
TICKET = re.compile(r'<p class="ticket">(LAKSA-[0-9]{8}-[0-9]{5})</p>')
LISTED = re.compile(r'<strong class="ticket-id">(LAKSA-[0-9]{8}-[0-9]{5})</strong>')


class CheckFailed(Exception):
    pass


def fetch(url: str, data: bytes | None = None, *, attempts: int = 30) -> str:
    """The body at ``url`` (POST ``data`` when given), retried while nothing answers yet."""
    return fetch_bytes(url, data, attempts=attempts).decode("utf-8")


def fetch_bytes(url: str, data: bytes | None = None, *, attempts: int = 30) -> bytes:
    """The body at ``url`` as bytes (see :func:`fetch`)."""
    for attempt in range(attempts):
        try:
            with OPENER.open(url, data=data, timeout=10) as reply:
                return bytes(reply.read())
        except urllib.error.HTTPError as exc:
            raise CheckFailed(f"{url} answered HTTP {exc.code}") from None
        except OSError as exc:
            if attempt == attempts - 1:
                raise CheckFailed(f"{url} does not answer: {exc}") from None
            time.sleep(1)
    raise AssertionError("unreachable")


def smartshare_json(*args: str) -> Any:
    done = subprocess.run(["smartshare", *args, "--format", "json"], capture_output=True, text=True)
    if done.returncode != 0:
        raise CheckFailed(f"smartshare {' '.join(args)} failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout)


def deployed(workspace: str) -> dict[str, Any]:
    report = smartshare_json("ps", "--workspace", workspace)
    if report["project"] is None:
        raise CheckFailed(f"nothing is deployed from {workspace}")
    return dict(report)


def service_of(report: dict[str, Any], service: str) -> dict[str, Any]:
    for entry in report["services"]:
        if entry["service"] == service:
            return dict(entry)
    raise CheckFailed(f"no service {service} in project {report['project']}")


# -- the commands -----------------------------------------------------------------------


def address(workspace: str, service: str) -> None:
    published = service_of(deployed(workspace), service)["published"]
    if not published:
        raise CheckFailed(f"{service} publishes no port")
    print(published[0])


def page(url: str, text: str) -> None:
    body = html.unescape(fetch(url))
    title = re.search(r"<title>(.*?)</title>", body, re.S)
    region = re.search(r'class="region">(.*?)<', body, re.S)
    print(f"  GET {url}")
    print(f"  title:  {title.group(1).strip() if title else '?'}")
    print(f"  region: {region.group(1).strip() if region else '?'}")
    if text not in body:
        raise CheckFailed(f"the page does not say {text!r}")
    print(f"  the page says {text!r}")


def says(url: str, text: str) -> None:
    body = html.unescape(fetch(url))
    lines = [re.sub(r"<[^>]*>", "", line).strip() for line in body.splitlines() if text in line]
    if not lines:
        raise CheckFailed(f"{url} does not say {text!r}")
    print(f"  GET {url}: {lines[0]}")


def logo(url: str, expected: str) -> None:
    body = fetch(url)
    found = re.search(r'<img class="logo" src="([^"]+)"', body)
    if found is None:
        raise CheckFailed(f"the page at {url} shows no logo")
    address = urllib.parse.urljoin(url, found.group(1))
    image = fetch_bytes(address)
    if image != Path(expected).read_bytes():
        raise CheckFailed(f"{address} is not {expected} ({len(image)} bytes)")
    print(f"  GET {address}: {len(image)} bytes, the very file {expected}")


def complain(url: str, tickets: str) -> None:
    form = urllib.parse.urlencode(COMPLAINT).encode("ascii")
    body = fetch(url.rstrip("/") + "/cgi-bin/lapor.cgi", data=form, attempts=1)
    found = TICKET.search(body)
    if found is None:
        raise CheckFailed("LAKSA answered without a ticket number")
    Path(tickets).write_text(found.group(1) + "\n", encoding="utf-8")
    print(f"  POST {url.rstrip('/')}/cgi-bin/lapor.cgi  (kategori: {COMPLAINT['kategori']})")
    print(f"  ticket: {found.group(1)}")


def listed(url: str, ticket: str) -> None:
    body = fetch(url.rstrip("/") + "/cgi-bin/laporan.cgi")
    shown = LISTED.findall(body)
    if ticket not in shown:
        raise CheckFailed(f"{ticket} is not listed by LAKSA ({len(shown)} report(s) shown)")
    print(f"  {ticket} is listed ({len(shown)} report(s) shown by /cgi-bin/laporan.cgi)")


def check_json(url: str, *expected: str) -> None:
    text = fetch(url)
    folder = os.environ.get("SMARTSHARE_DEMO_SECRETS")
    files = sorted(Path(folder).iterdir()) if folder else []
    if any((value := f.read_text(encoding="utf-8").strip()) and value in text for f in files):
        raise CheckFailed(f"{url} shows a secret value")
    answer = json.loads(text)
    print(f"  GET {url}")
    for key, value in answer.items():
        print(f"    {key}: {json.dumps(value)}")
    for pair in expected:
        key, _, wanted = pair.partition("=")
        if answer.get(key) != json.loads(wanted):
            raise CheckFailed(f"{key} is {json.dumps(answer.get(key))}, not {wanted}")
    print(f"  as expected: {', '.join(expected)}")


def healthy(workspace: str, *apps: str) -> None:
    report = deployed(workspace)
    sick = []
    for entry in report["services"]:
        if entry["kind"] == "job":
            fine = entry["drift"] is None
        else:
            fine = entry["state"] == "running" and entry["health"] in ("healthy", None)
            fine = fine and entry["drift"] is None
        if not fine:
            sick.append(f"{entry['service']} ({entry['state']}, {entry['health'] or 'no health'})")
    running = sorted({entry["app"] for entry in report["services"]})
    if sick:
        raise CheckFailed(f"not healthy: {', '.join(sick)}")
    missing = [app for app in apps if app not in running]
    if missing:
        raise CheckFailed(f"not in the stack: {', '.join(missing)}")
    count = len(report["services"])
    print(f"  {len(running)} app(s), {count} container(s): every one running and healthy")


def up_to_date() -> None:
    result = json.load(sys.stdin)
    changed = [s["service"] for s in result["services"] if s["action"] != "up to date"]
    if not result["up_to_date"] or changed:
        raise CheckFailed(f"deploy changed something: {', '.join(changed) or '?'}")
    print(f"  all {len(result['services'])} service(s) up to date: no container was touched")


def restart(workspace: str, service: str) -> None:
    import docker

    project = deployed(workspace)["project"]
    client = docker.from_env()
    found = client.containers.list(
        filters={
            "label": [
                f"com.docker.compose.project={project}",
                f"com.docker.compose.service={service}",
            ]
        }
    )
    if len(found) != 1:
        raise CheckFailed(f"{len(found)} running container(s) for {service}, not 1")
    container = found[0]
    before = container.attrs["State"]["StartedAt"]
    print(f"  docker restart {container.name}")
    if shutil.which("docker"):
        subprocess.run(["docker", "restart", container.name], check=True, stdout=subprocess.DEVNULL)
    else:
        container.restart()
    deadline = time.monotonic() + 120
    while True:
        container.reload()
        state = container.attrs["State"]
        if state["StartedAt"] != before and (state.get("Health") or {}).get("Status") == "healthy":
            break
        if time.monotonic() > deadline:
            raise CheckFailed(f"{container.name} is not healthy 120 s after its restart")
        time.sleep(1)
    print(f"  {container.name} started again at {state['StartedAt'][:19]}Z and is healthy")


def mirror(registry: str, image: str) -> None:
    import docker

    name, _, tag = image.partition(":")
    repository = f"{registry}/dockerhub/library/{name}"
    manifest = f"http://{registry}/v2/dockerhub/library/{name}/manifests/{tag}"
    request = urllib.request.Request(
        manifest,
        method="HEAD",
        headers={
            "Accept": ", ".join(
                [
                    "application/vnd.docker.distribution.manifest.v2+json",
                    "application/vnd.oci.image.manifest.v1+json",
                    "application/vnd.oci.image.index.v1+json",
                ]
            )
        },
    )
    try:
        with OPENER.open(request, timeout=10):
            print(f"  the mirror holds {image}: {repository}:{tag}")
            return
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise CheckFailed(f"{registry} answered HTTP {exc.code}") from None
    except OSError as exc:
        raise CheckFailed(f"{registry} does not answer: {exc}") from None
    api = docker.APIClient(version="auto", **docker.utils.kwargs_from_env())
    try:
        api.tag(image, repository, tag)
        for chunk in api.push(repository, tag=tag, stream=True, decode=True):
            if "error" in chunk:
                raise CheckFailed(f"pushing {repository}:{tag} failed: {chunk['error']}")
        # Without a local copy under the mirror's name, deploy pulls it through the rule.
        api.remove_image(f"{repository}:{tag}")
    finally:
        api.close()
    print(f"  pushed {image} to {repository}:{tag}")


def adopted(workspace: str, *apps: str) -> None:
    if not (Path(workspace) / "smartshare.lock").is_file():
        return
    versions = {a["app"]: a["version"] for a in smartshare_json("status", "-w", workspace)["apps"]}
    for app in apps:
        if app in versions:
            print(app, versions[app])


def adoption(workspace: str, app: str, version: str) -> None:
    history = smartshare_json("history", app, "--workspace", workspace)["adoptions"]
    for entry in history:  # newest first
        if entry["version"] == version:
            print(entry["adoption_id"])
            return
    raise CheckFailed(f"no adoption of {app} {version} in {workspace}")


COMMANDS: dict[str, Callable[..., None]] = {
    "address": address,
    "page": page,
    "says": says,
    "logo": logo,
    "complain": complain,
    "listed": listed,
    "json": check_json,
    "healthy": healthy,
    "up-to-date": up_to_date,
    "restart": restart,
    "mirror": mirror,
    "adopted": adopted,
    "adoption": adoption,
}


def main() -> int:
    command = COMMANDS.get(sys.argv[1]) if len(sys.argv) > 1 else None
    try:
        if command is None:
            raise TypeError("unknown command")
        inspect.signature(command).bind(*sys.argv[2:])
    except TypeError:
        print("\n\n".join(__doc__.split("\n\n")[1:3]), file=sys.stderr)
        return 2
    try:
        command(*sys.argv[2:])
    except CheckFailed as exc:
        print(f"check failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
