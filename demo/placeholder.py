"""Write a placeholder source for an app that has no sample in demo/sources/.

The demo's forge needs a source for every app of the catalogue, but only a few
apps have a sample written for them.  For the others this module writes one
small source from the app's manifest, clearly labelled as a placeholder: each
image of the manifest becomes a busybox httpd image (``FROM busybox:1.36``,
nothing downloaded, ``USER 65534``, port 8080) that serves

- ``/``: ``placeholder/index.html``, which smartshare renders at adoption from
  the catalogue's ``templates/_placeholder/index.html.j2`` (the manifest lists
  it): the app's title and owner, the adopting region's name and colours, and
  a banner saying that this is a placeholder and not the owner's code;
- ``/settings/<file>``: the files the app's own image templates rendered into
  the source tree (``config/app.env``, ``config/display.json``...);
- ``/healthz``: ``ok``, for health checks;
- ``/cgi-bin/status.cgi``: JSON telling which runtime settings reached the
  container (names only, never values: the file a runtime template renders,
  mounted at ``/etc/<app>/<dest>``, and ``NAME_FILE`` secrets) and whether the
  apps it requires answer (``<APP>_URL``, e.g. ``SIKDA_URL``).

Everything written depends on the manifest only, so the same manifest always
gives the same files (and, with make_forge's fixed dates, the same commit).
"""

from __future__ import annotations

import html
import shlex
import textwrap
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

PAGE_TEMPLATE = "_placeholder/index.html.j2"
PAGE = "placeholder/index.html"  # where the page is rendered, relative to an image's context
BASE_IMAGE = "busybox:1.36"


class PlaceholderError(Exception):
    """The manifest cannot be given a placeholder as it stands."""


@dataclass
class BuildContext:
    """One folder the manifest builds images from, with one Dockerfile."""

    context: str  # relative to the source root, "." for the root
    dockerfile: str  # relative to the context
    targets: list[str | None] = field(default_factory=list)
    build_args: list[str] = field(default_factory=list)

    def inside(self, dest: str) -> str | None:
        """``dest`` (relative to the source root) relative to this context, or None."""
        if self.context in ("", "."):
            return dest
        prefix = PurePosixPath(self.context).as_posix() + "/"
        return dest[len(prefix) :] if dest.startswith(prefix) else None


def build_contexts(manifest: dict[str, Any]) -> list[BuildContext]:
    contexts: dict[tuple[str, str], BuildContext] = {}
    for image in manifest["images"]:
        key = (image.get("context") or ".", image.get("dockerfile") or "Dockerfile")
        built = contexts.setdefault(key, BuildContext(*key))
        target = image.get("target")
        if target not in built.targets:
            built.targets.append(target)
        for name in image.get("args") or {}:
            if name not in built.build_args:
                built.build_args.append(name)
    return list(contexts.values())


def env_name(app: str) -> str:
    """The variable that gives an app's URL to the apps requiring it: sikda -> SIKDA_URL."""
    return app.upper().replace("-", "_") + "_URL"


def write_placeholder(manifest: dict[str, Any], root: Path) -> None:
    """Write the placeholder source of ``manifest`` into the folder ``root``."""
    app = manifest["name"]
    templates = manifest.get("templates") or []
    pages = [t["dest"] for t in templates if t["src"] == PAGE_TEMPLATE]
    if not pages:
        raise PlaceholderError(
            f"manifest of '{app}' does not list templates/{PAGE_TEMPLATE}: its placeholder "
            f"would not show the adopting region (add it with dest '{PAGE}')"
        )
    image_files = [
        t["dest"]
        for t in templates
        if t.get("target", "image") == "image" and t["src"] != PAGE_TEMPLATE
    ]
    runtime_files = [
        f"/etc/{app}/{t['dest']}"
        for t in templates
        if t.get("target") == "runtime" and t["dest"].endswith(".env")
    ]
    required = [(name, env_name(name)) for name in manifest.get("requires") or []]
    root.mkdir(parents=True, exist_ok=True)
    write(root / "README.md", readme(manifest))
    for built in build_contexts(manifest):
        folder = root / built.context
        with_page = any(built.inside(dest) == PAGE for dest in pages)
        settings = [inside for dest in image_files if (inside := built.inside(dest))]
        write(folder / built.dockerfile, dockerfile(manifest, built))
        write(folder / "placeholder" / "assemble.sh", assemble_script(settings), mode=0o755)
        write(
            folder / "placeholder" / "status.cgi",
            status_script(app, runtime_files, required),
            mode=0o755,
        )
        write(folder / "placeholder" / "style.css", STYLE)
        write(folder / PAGE, unrendered_page(manifest, built, with_page))


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


def owner_of(manifest: dict[str, Any]) -> str:
    return str(manifest["owner"]["name"])


def readme(manifest: dict[str, Any]) -> str:
    title, owner = manifest["title"], owner_of(manifest)
    lines = [
        f"# {title}: PLACEHOLDER source for the smartshare demo",
        "",
        f"Generated by smartshare's `demo/placeholder.py`. This is **not** {owner}'s",
        f"{title} code, nor any part of it: the demo has no sample source for {title},",
        "so this placeholder stands in for it, that `smartshare adopt` has something real to",
        "clone, render and build, and a deployment something to run.",
        "",
        "Each image is `FROM busybox:1.36` (nothing is downloaded), runs as 65534:65534 and",
        "serves on port 8080, with busybox httpd:",
        "",
        "- `/`: `placeholder/index.html`, rendered by smartshare for the adopting region from",
        "  the catalogue's `templates/_placeholder/index.html.j2`: the app's title and owner,",
        "  the region's name and colours, and a banner saying that this is a placeholder;",
        "- `/settings/<file>`: the files the app's own templates render into the source tree;",
        "- `/healthz`: `ok`;",
        "- `/cgi-bin/status.cgi`: JSON telling which runtime settings reached the container",
        "  (names only, never values) and whether the apps it requires answer.",
        "",
        "Images:",
        "",
    ]
    for image in manifest["images"]:
        target = f", target `{image['target']}`" if image.get("target") else ""
        lines.append(
            f"- `{image['name']}`: context `{image.get('context') or '.'}`, "
            f"`{image.get('dockerfile') or 'Dockerfile'}`{target}"
        )
    lines.append("")
    return "\n".join(lines)


def dockerfile(manifest: dict[str, Any], built: BuildContext) -> str:
    title, owner = manifest["title"], owner_of(manifest)
    about = (
        f"PLACEHOLDER for the smartshare demo, generated by demo/placeholder.py: not "
        f"{owner}'s {title}. busybox httpd serves the page smartshare renders for the "
        "adopting region, the regional settings, /healthz and /cgi-bin/status.cgi. "
        "Nothing is downloaded."
    )
    lines = [
        *textwrap.wrap(about, width=86, initial_indent="# ", subsequent_indent="# "),
        f"FROM {BASE_IMAGE} AS assemble",
        *(f"ARG {name}" for name in built.build_args),
        "COPY . /src/",
        "RUN sh /src/placeholder/assemble.sh /www",
        "",
    ]
    first, *others = built.targets
    lines += [
        f"FROM {BASE_IMAGE} AS {first or 'placeholder'}",
        "COPY --from=assemble /www /www",
        "USER 65534:65534",
        "EXPOSE 8080",
        "# As PID 1, httpd would ignore the stop signal: a shell in front ends on it at once.",
        'CMD ["sh", "-c", "trap \'exit 0\' TERM; httpd -f -p 8080 -h /www & wait"]',
    ]
    for target in others:
        lines += ["", f"FROM {first or 'placeholder'} AS {target or 'placeholder'}"]
    return "\n".join(lines) + "\n"


def assemble_script(settings: list[str]) -> str:
    copies = [f"copy_if_rendered {shlex.quote(path)}" for path in settings]
    return "\n".join(
        [
            "#!/bin/sh",
            "# Build step of the placeholder image (run by the Dockerfile): lays out the web root.",
            "set -eu",
            "www=$1",
            'mkdir -p "$www/cgi-bin" "$www/settings"',
            'cp /src/placeholder/index.html /src/placeholder/style.css "$www/"',
            'cp /src/placeholder/status.cgi "$www/cgi-bin/"',
            "# The regional settings smartshare rendered into the source tree (when it did).",
            'copy_if_rendered() { if [ -f "/src/$1" ]; then cp "/src/$1" "$www/settings/"; fi; }',
            *copies,
            'echo ok >"$www/healthz"',
            'chmod -R a+rX,go-w "$www"',
            'chmod 0755 "$www/cgi-bin/status.cgi"',
            "",
        ]
    )


def status_script(app: str, runtime_files: list[str], required: list[tuple[str, str]]) -> str:
    header = [
        "#!/bin/sh",
        f"# Status of the {app} placeholder (smartshare demo), as JSON: which runtime settings",
        "# reached the container (names only: values are never printed) and whether the apps",
        "# it requires answer on their /healthz.",
        f"APP={shlex.quote(app)}",
        f"RUNTIME_FILES={shlex.quote(' '.join(runtime_files))}",
        f"REQUIRED={shlex.quote(' '.join(f'{name}:{var}' for name, var in required))}",
    ]
    return "\n".join(header) + "\n" + STATUS_BODY


STATUS_BODY = r"""
json() {
    printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | tr -d '\000-\037')"
}

# inspect FILE: the settings FILE names, as JSON members "NAME": true|false.
# Runs in a subshell (command substitution): what FILE sets stays there.
inspect() {
    names=$(sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' "$1")
    # shellcheck disable=SC1090
    . "$1"
    separator=""
    for name in $names; do
        # A setting counts when it has a value, or a NAME_FILE secret that is not empty.
        eval "value=\${$name-} secret_file=\${${name}_FILE-}"
        if [ -n "$value" ] || { [ -n "$secret_file" ] && [ -s "$secret_file" ]; }; then
            is_set=true
        else
            is_set=false
        fi
        printf '%s%s: %s' "$separator" "$(json "$name")" "$is_set"
        separator=", "
    done
}

files="" settings=""
for file in $RUNTIME_FILES; do
    if [ -r "$file" ]; then readable=true; else readable=false; fi
    files="$files${files:+, }$(json "$file"): $readable"
    [ "$readable" = true ] || continue
    found=$(inspect "$file")
    settings="$settings${settings:+${found:+, }}$found"
done

requires=""
for entry in $REQUIRED; do
    name=${entry%%:*} variable=${entry#*:}
    eval "url=\${$variable-}"
    answered=false url_json=null
    if [ -n "$url" ]; then
        url_json=$(json "$url")
        case $url in
            http://*|https://*)
                if timeout 5 wget -q -O /dev/null "${url%/}/healthz" 2>/dev/null; then
                    answered=true
                fi
                ;;
        esac
    fi
    member="$(json "$name"): {\"url\": $url_json, \"answered\": $answered}"
    requires="$requires${requires:+, }$member"
done

printf 'Content-Type: application/json\r\nCache-Control: no-store\r\n\r\n'
printf '{"app": %s, "placeholder": true, ' "$(json "$APP")"
printf '"runtime_files": {%s}, "runtime_settings": {%s}, "requires": {%s}}\n' \
    "$files" "$settings" "$requires"
"""


def unrendered_page(manifest: dict[str, Any], built: BuildContext, with_page: bool) -> str:
    """The page as committed: smartshare replaces it at adoption when ``with_page``."""
    title, owner = html.escape(manifest["title"]), html.escape(owner_of(manifest))
    summary = manifest["summary"]
    what = html.escape(summary.get("id") or summary.get("en") or "")
    if with_page:
        note = (
            "Belum diadopsi: smartshare membuat halaman ini untuk daerah yang mengadopsi "
            "(templates/_placeholder/index.html.j2)."
        )
    else:
        note = f"Image dari folder {html.escape(built.context)}: halaman daerah ada di image lain."
    return f"""<!doctype html>
<html lang="id">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="smartshare-placeholder" content="{html.escape(manifest["name"])}">
  <title>{title} (placeholder)</title>
  <link rel="stylesheet" href="/style.css">
</head>
<body>
  <p class="placeholder-banner" role="note">
    Halaman pengganti (placeholder) yang dibuat untuk demo smartshare: bukan kode aplikasi
    {owner}.
    <span lang="en">A placeholder generated for the smartshare demo, not the code of
    {owner}.</span>
  </p>
  <header>
    <h1>{title}</h1>
  </header>
  <main>
    <p>{what}</p>
    <p class="note">{note}</p>
    <p class="status"><a href="/cgi-bin/status.cgi">Status (JSON)</a></p>
  </main>
</body>
</html>
"""


STYLE = """\
/* Placeholder for the smartshare demo: colours come from the page's inline :root. */
:root { --primary: #52606d; --accent: #cbd2d9; }
* { box-sizing: border-box; }
body { margin: 0; font-family: system-ui, sans-serif; color: #1f2933; background: #f5f7fa; }
.placeholder-banner { margin: 0; padding: 0.6rem 2rem; background: #fff3c4; color: #513c06;
  border-bottom: 1px solid #e9b949; font-size: 0.95rem; }
.placeholder-banner span { display: block; font-style: italic; }
header { background: var(--primary); color: #fff; padding: 1.5rem 2rem;
  border-bottom: 6px solid var(--accent); }
header h1 { margin: 0.2rem 0; }
header .region { margin: 0; font-weight: 600; letter-spacing: 0.04em; text-transform: uppercase; }
header .motto { margin: 0; font-style: italic; opacity: 0.9; }
main { max-width: 42rem; margin: 2rem auto; padding: 0 1rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.4rem 1rem; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
.swatch { display: inline-block; width: 1em; height: 1em; vertical-align: middle;
  border: 1px solid #1f2933; border-radius: 2px; }
.note { border-left: 4px solid var(--accent); background: #fff; padding: 0.6rem 1rem; }
footer { max-width: 42rem; margin: 0 auto 2rem; padding: 0 1rem; font-size: 0.9rem;
  color: #52606d; }
footer a, main a { color: var(--primary); }
"""
