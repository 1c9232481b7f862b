"""Run an adopted image and show that its page belongs to the adopting region.

Starts the container on the host network (the demo engine has no bridge) with
busybox httpd on a free loopback port, fetches ``/`` and prints what the page
says about the region.  Exits non-zero if ``expected`` is not on the page.
"""

from __future__ import annotations

import html
import re
import socket
import sys
import time
import urllib.request

import docker


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    image, expected = sys.argv[1], sys.argv[2]
    port = free_port()
    client = docker.from_env()
    container = client.containers.run(
        image,
        ["httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/www"],
        network_mode="host",
        detach=True,
        remove=True,
    )
    try:
        page = ""
        for _ in range(50):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as reply:
                    page = reply.read().decode("utf-8")
                break
            except OSError:
                time.sleep(0.1)
    finally:
        container.stop(timeout=1)
    title = re.search(r"<title>(.*?)</title>", page, re.S)
    region = re.search(r'class="region">(.*?)<', page, re.S)
    print(f"  image:  {image}")
    print(f"  GET http://127.0.0.1:{port}/")
    print(f"  title:  {html.unescape(title.group(1)) if title else '?'}")
    print(f"  region: {html.unescape(region.group(1)) if region else '?'}")
    if expected not in html.unescape(page):
        print(f"  the page does not say {expected!r}", file=sys.stderr)
        return 1
    print(f"  the page says {expected!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
