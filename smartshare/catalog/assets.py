"""Assets: binary files a region supplies to an app (a logo, an icon), checked by content.

An app's manifest declares each asset (``assets``: name, allowed types, size
limit, where it goes); the region profile names the files, next to itself:
``assets.<app>.<asset>: file:PATH``, or for an asset named like a ``branding``
key that may be a file (``logo``), ``branding.logo: file:PATH`` for every app
at once.  A file is found only inside the profile's folder (no ``..``, no
absolute path, no symbolic link leading out), and its type is what its bytes
are, whatever its name says.  An SVG is served to citizens as it is, so it
must be XML with an ``<svg>`` root and no script, no ``<foreignObject>``, no
reference to another file or address, and no DTD (entities).

The standard library only: ``validate`` reads a catalogue's assets, and
``xml.etree`` is imported only when an SVG is checked.
"""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from smartshare.catalog.diagnostics import shown_value
from smartshare.catalog.models import AppManifest, Asset, AssetType, TemplateTarget
from smartshare.catalog.profile import RegionProfile
from smartshare.catalog.rules import MAX_ASSET_KB, relative_path_problem
from smartshare.errors import InvalidInputError, UnsafePathError
from smartshare.state.safefs import NotRegularFileError, read_regular_file

# branding keys that may name a file, and the asset name that file is for.
BRANDING_ASSETS = ("logo",)
MEDIA_TYPES = {
    AssetType.PNG: "image/png",
    AssetType.SVG: "image/svg+xml",
    AssetType.ICO: "image/vnd.microsoft.icon",
}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SVG_NAMESPACE = "http://www.w3.org/2000/svg"
# Elements that run script or show another document.
_ACTIVE_ELEMENTS = frozenset(
    {"script", "foreignobject", "iframe", "embed", "object", "handler", "listener"}
)
# A CSS reference to anything but a fragment of the document itself.
_CSS_EXTERNAL = re.compile(r"url\(\s*['\"]?\s*(?!#)|@import", re.IGNORECASE)


@dataclass(frozen=True)
class SuppliedAsset:
    """Where a region's file for an asset is named: the reference and its key in the profile."""

    reference: str  # file:PATH
    loc: tuple[str, ...]  # ("assets", app, name) or ("branding", "logo")


@dataclass(frozen=True)
class ResolvedAsset:
    """An asset's file, read and checked: what goes into the app's tree."""

    name: str
    dest: str
    target: TemplateTarget
    type: AssetType
    content: bytes
    digest: str  # sha256:HEX of the content
    reference: str

    def context(self) -> dict[str, str]:
        """What templates see as ``assets.<name>``."""
        return {"dest": self.dest, "type": self.type.value, "media_type": MEDIA_TYPES[self.type]}


def supplied(region: RegionProfile, app: str, asset: Asset) -> SuppliedAsset | None:
    """The profile's file for ``app``'s ``asset``: its own entry, else a branding file."""
    own = region.assets.get(app, {}).get(asset.name)
    if own is not None:
        return SuppliedAsset(own, ("assets", app, asset.name))
    if asset.name in BRANDING_ASSETS:
        value = getattr(region.branding, asset.name)
        if isinstance(value, str) and value.startswith("file:"):
            return SuppliedAsset(value, ("branding", asset.name))
    return None


def resolve_assets(
    *, app: AppManifest, region: RegionProfile, region_dir: Path
) -> list[ResolvedAsset]:
    """``app``'s assets as the region supplies them, read and checked.

    Raises InvalidInputError naming the app, the asset and the file when a
    required asset has no file, or a file is missing, leaves the profile's
    folder, is too large or is not of an allowed type.
    """
    resolved: list[ResolvedAsset] = []
    for asset in app.assets:
        given = supplied(region, app.name, asset)
        if given is None:
            if asset.required:
                raise InvalidInputError(
                    f"{app.name}: the region gives no file for its required asset '{asset.name}'",
                    hint=missing_hint(app.name, asset),
                )
            continue
        try:
            content, kind = read_checked(given.reference, region_dir, asset)
        except InvalidInputError as exc:
            raise type(exc)(
                f"{app.name}: asset '{asset.name}' ({'.'.join(given.loc)}): {exc.message}",
                hint=exc.hint,
            ) from None
        resolved.append(
            ResolvedAsset(
                name=asset.name,
                dest=asset.dest_for(kind),
                target=asset.target,
                type=kind,
                content=content,
                digest="sha256:" + hashlib.sha256(content).hexdigest(),
                reference=given.reference,
            )
        )
    return resolved


def missing_hint(app: str, asset: Asset) -> str:
    where = f"assets.{app}.{asset.name}: file:PATH"
    if asset.name in BRANDING_ASSETS:
        where += f" (or branding.{asset.name}: file:PATH for every app)"
    return f"give it in the region profile: {where}"


def read_checked(reference: str, base_dir: Path, asset: Asset | None) -> tuple[bytes, AssetType]:
    """The bytes and type of the file ``reference`` names, checked against ``asset``.

    Without ``asset`` (a branding file no app is asked about) any of the
    types and up to the largest size an asset may have are accepted.
    """
    types = tuple(asset.types) if asset is not None else tuple(AssetType)
    max_kb = asset.max_kb if asset is not None else MAX_ASSET_KB
    path = asset_path(reference, base_dir)
    limit = "the asset's max_kb" if asset is not None else "the largest asset"
    data = read_file(path, reference, max_bytes=max_kb * 1024, limit=limit)
    kind, problem = content_problem(data, types)
    if problem is not None:
        raise InvalidInputError(f"{shown_value(reference)} {problem}")
    assert kind is not None
    return data, kind


def asset_path(reference: str, base_dir: Path) -> Path:
    """The file ``file:PATH`` names, inside ``base_dir`` (the profile's folder).

    Raises UnsafePathError for a path that leaves the folder, by its spelling
    or through a symbolic link.
    """
    relative = reference.removeprefix("file:")
    problem = relative_path_problem(relative, folder="the profile's folder")
    if problem:
        raise UnsafePathError(f"{shown_value(reference)}: the path {problem}")
    base = base_dir.resolve()
    path = base.joinpath(*PurePosixPath(relative).parts)
    try:
        real = path.resolve(strict=True)
    except FileNotFoundError:
        raise InvalidInputError(
            f"{shown_value(reference)}: no such file ({path})",
            hint="file: paths are relative to the region profile's folder",
        ) from None
    except (OSError, RuntimeError):
        raise UnsafePathError(
            f"{shown_value(reference)}: the path is a symbolic link loop"
        ) from None
    if not real.is_relative_to(base):
        raise UnsafePathError(
            f"{shown_value(reference)} resolves outside the profile's folder "
            "(a symbolic link pointing elsewhere); refusing to read it"
        )
    return real


def read_file(path: Path, reference: str, *, max_bytes: int, limit: str) -> bytes:
    """A regular file's bytes, refusing more than ``max_bytes`` (``limit`` says whose)."""
    try:
        data = read_regular_file(path, max_bytes)
    except NotRegularFileError:
        raise InvalidInputError(f"{shown_value(reference)} is not a regular file") from None
    except OSError as exc:
        raise InvalidInputError(
            f"{shown_value(reference)} cannot be read: {exc.strerror or exc}"
        ) from None
    if len(data) > max_bytes:
        raise InvalidInputError(
            f"{shown_value(reference)} is larger than {max_bytes // 1024} KiB ({limit})"
        )
    return data


# -- content ---------------------------------------------------------------------


def content_type(data: bytes) -> AssetType | None:
    """What ``data`` is by its first bytes: PNG, ICO or (XML text) SVG; None for anything else."""
    if data.startswith(_PNG_SIGNATURE):
        return AssetType.PNG
    if data[:4] == b"\x00\x00\x01\x00":
        return AssetType.ICO
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<") and b"<svg" in data[:65536].lower():
        return AssetType.SVG
    return None


def content_problem(
    data: bytes, types: tuple[AssetType, ...]
) -> tuple[AssetType | None, str | None]:
    """The type of ``data`` and, when it is not acceptable as one of ``types``, why."""
    wanted = ", ".join(t.value for t in types)
    kind = content_type(data)
    if kind is None:
        if not data:
            return None, f"is empty, not {wanted}"
        looks = "text" if _is_text(data[:4096]) else "binary data"
        return None, f"is not a PNG, SVG or ICO file (its content is {looks}); expected {wanted}"
    if kind not in types:
        return kind, f"is {kind.value.upper()} by its content; expected {wanted}"
    checker = {AssetType.PNG: png_problem, AssetType.ICO: ico_problem, AssetType.SVG: svg_problem}
    problem = checker[kind](data)
    return kind, (None if problem is None else f"is not a usable {kind.value.upper()}: {problem}")


def _is_text(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(data) - 3  # cut in the middle of a character
    return b"\x00" not in data


def png_problem(data: bytes) -> str | None:
    """Why ``data`` is not a complete PNG (chunks, checksums, an image header first), or None."""
    chunks = list(_png_chunks(data))
    if not chunks or chunks[0][0] != b"IHDR":
        return "it has no image header (IHDR) first"
    if any(kind == b"" for kind, _ in chunks):
        return "it is truncated, or a chunk's length or checksum is wrong"
    header = chunks[0][1]
    if len(header) != 13:
        return "its image header has the wrong length"
    width, height = struct.unpack(">II", header[:8])
    if not width or not height:
        return "its width or height is zero"
    if chunks[-1][0] != b"IEND":
        return "it does not end with an IEND chunk"
    return None


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(type, payload) of each chunk; (b"", b"") once the data stops making sense."""
    position = len(_PNG_SIGNATURE)
    while position < len(data):
        if position + 12 > len(data):
            yield b"", b""
            return
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        end = position + 8 + length
        if end + 4 > len(data) or not kind.isalpha():
            yield b"", b""
            return
        payload = data[position + 8 : end]
        (crc,) = struct.unpack(">I", data[end : end + 4])
        if zlib.crc32(kind + payload) != crc:
            yield b"", b""
            return
        yield kind, payload
        position = end + 4
        if kind == b"IEND":
            return


def ico_problem(data: bytes) -> str | None:
    """Why ``data`` is not an icon file whose entries lie inside it, or None."""
    if len(data) < 6:
        return "it is truncated"
    _, kind, count = struct.unpack("<HHH", data[:6])
    if kind != 1 or count == 0:
        return "its header lists no icon"
    if len(data) < 6 + 16 * count:
        return "its directory is truncated"
    for index in range(count):
        size, offset = struct.unpack("<II", data[6 + 16 * index + 8 : 6 + 16 * index + 16])
        if size == 0 or offset + size > len(data):
            return f"icon {index + 1} lies outside the file"
    return None


def svg_problem(data: bytes) -> str | None:
    """Why ``data`` is not an SVG safe to serve to citizens, or None."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "it is not UTF-8 text"
    lowered = text.lower()
    # No DTD at all: entities can expand without bound or name other files.
    if "<!doctype" in lowered or "<!entity" in lowered:
        return "it has a DOCTYPE or ENTITY declaration"
    if "<?xml-stylesheet" in lowered:
        return "it links a stylesheet"
    import xml.etree.ElementTree as ElementTree

    # No DTD reaches the parser (refused above), so no entity is expanded;
    # the encoding is UTF-8 whatever the declaration says.
    parser = ElementTree.XMLParser(encoding="utf-8")  # noqa: S314
    try:
        parser.feed(text.encode("utf-8"))
        root = parser.close()
    except ElementTree.ParseError as exc:
        return f"it is not well-formed XML ({exc})"
    namespace, name = _split(root.tag)
    if name != "svg" or namespace not in ("", _SVG_NAMESPACE):
        return "its root element is not <svg> (in the SVG namespace)"
    for element in root.iter():
        _, name = _split(element.tag)
        if name.lower() in _ACTIVE_ELEMENTS:
            return f"it has a <{name}> element (script or another document)"
        if name == "style" and _CSS_EXTERNAL.search(element.text or ""):
            return "its style sheet refers to another file or address"
        for attribute, value in element.attrib.items():
            _, attribute_name = _split(attribute)
            lowered_value = value.strip().lower()
            if attribute_name.lower().startswith("on"):
                return f"it has an event handler attribute '{attribute_name}' (script)"
            if attribute_name in ("href", "src") and not lowered_value.startswith("#"):
                return f"a {attribute_name} refers to another file or address"
            if "javascript:" in lowered_value or _CSS_EXTERNAL.search(value):
                return f"attribute '{attribute_name}' refers to another file or address"
    return None


def _split(tag: object) -> tuple[str, str]:
    """``{namespace}name`` as (namespace, name)."""
    text = tag if isinstance(tag, str) else ""
    if text.startswith("{"):
        namespace, _, name = text[1:].partition("}")
        return namespace, name
    return "", text
