"""Image references: the one place that parses, normalises and mirrors them.

An external image in a manifest (``postgres:16``) is untrusted text that ends up
in a compose file and in engine calls, so it is checked against Docker's
reference grammar before anything uses it.  Mirror rules rewrite references to
a registry the region's servers can reach (``docker.io/library/`` ->
``registry.badungkab.go.id/dockerhub/library/``); a reference is normalised
first, so ``postgres:16``, ``library/postgres:16`` and
``docker.io/library/postgres:16`` all meet the same rule.

Only the standard library: the model checks and the settings loader use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_REGISTRY = "docker.io"
OFFICIAL_NAMESPACE = "library"
MAX_REFERENCE_LENGTH = 255

# Docker's reference grammar (distribution/reference), anchored with \Z: a
# trailing newline must not pass as "$" lets it in Python.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?\Z"
)


@dataclass(frozen=True)
class ImageReference:
    """A parsed image reference, its registry always spelled out."""

    registry: str
    path: str
    tag: str | None
    digest: str | None

    @property
    def repository(self) -> str:
        return f"{self.registry}/{self.path}"

    def __str__(self) -> str:
        text = self.repository
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def image_reference_problem(value: str) -> str | None:
    """Why ``value`` is not an image reference such as ``postgres:16``, or None."""
    if not value:
        return "must not be empty"
    if len(value) > MAX_REFERENCE_LENGTH:
        return f"must be at most {MAX_REFERENCE_LENGTH} characters"
    if _REFERENCE.match(value) is None:
        return (
            "must be an image reference such as 'postgres:16' or "
            "'registry.example.go.id/team/app:1.0' (lowercase name, optional tag or digest)"
        )
    return None


def parse_image_reference(value: str) -> ImageReference:
    """Parse and normalise ``value`` (``postgres`` -> ``docker.io/library/postgres:latest``).

    Raises ValueError with the reason when ``value`` is not a reference.
    """
    problem = image_reference_problem(value)
    match = _REFERENCE.match(value)
    if problem is not None or match is None:
        raise ValueError(problem or "not an image reference")
    domain, path = match.group("domain"), match.group("path")
    # As Docker reads it: a first component is a registry only if it looks like
    # a host (a dot, a port, or localhost); "team/app" is a Docker Hub path.
    if domain is not None and not ("." in domain or ":" in domain or domain == "localhost"):
        path = f"{domain}/{path}"
        domain = None
    registry = domain or DEFAULT_REGISTRY
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = f"{OFFICIAL_NAMESPACE}/{path}"
    tag = match.group("tag")
    digest = match.group("digest")
    if tag is None and digest is None:
        tag = "latest"
    return ImageReference(registry=registry, path=path, tag=tag, digest=digest)


@dataclass(frozen=True)
class MirrorRule:
    """Rewrite references starting with ``source`` to start with ``target`` instead."""

    source: str
    target: str


def mirror_prefix_problem(value: str) -> str | None:
    """Why ``value`` cannot be one side of a mirror rule (``registry/namespace/``), or None."""
    if not value or any(ch.isspace() or ord(ch) < 32 for ch in value):
        return "must be a registry prefix such as 'docker.io/library/' (no spaces)"
    if "://" in value:
        return "must name a registry without a scheme: 'registry.example.go.id/dockerhub/'"
    if "@" in value:
        return "must not hold credentials or a digest"
    head = value.rstrip("/")
    # The prefix followed by a name must be a valid reference.
    if image_reference_problem(f"{head}/x") is not None:
        return "must be a registry, optionally with a path, e.g. 'docker.io/library/'"
    return None


def apply_mirrors(reference: str, rules: Iterable[MirrorRule]) -> str:
    """``reference`` normalised, rewritten by the longest matching rule (first on a tie).

    A rule's prefix matches at a path boundary: ``docker.io/lib/`` does not
    match ``docker.io/library/x``.  Without a matching rule the normalised
    reference comes back unchanged.
    """
    normal = str(parse_image_reference(reference))
    best: MirrorRule | None = None
    for rule in rules:
        prefix = rule.source.rstrip("/") + "/"
        if normal.startswith(prefix) and (best is None or len(prefix) > len(best.source)):
            best = MirrorRule(source=prefix, target=rule.target)
    if best is None:
        return normal
    return best.target.rstrip("/") + "/" + normal[len(best.source) :]
