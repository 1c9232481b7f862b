"""Base images: where every ``FROM`` of the images to build comes from, and getting them
into the engine before any build starts.

A region's build servers may reach no public registry.  Each image a stage of a
Dockerfile starts from (:mod:`smartshare.building.dockerfile`: every stage,
``ARG``-substituted with the Dockerfile's defaults, the image's build arguments
and the region's) goes through the image-mirror rules
(:func:`smartshare.settings.image_mirror_rules`, the same as deploy's).  One the
engine lacks is pulled, from the mirror when a rule rewrites it, and tagged
under the name the Dockerfile uses: the Dockerfile is built unchanged, and the
build itself pulls nothing.  A base image that cannot be pulled stops the run
before any build starts, naming it as written and as rewritten.

The Dockerfile is read from the pinned commit in the git cache (or from the
rendered files, when an image template writes it), so ``plan`` can say the same
without exporting anything.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from smartshare.catalog.imagerefs import apply_mirrors, parse_image_reference
from smartshare.catalog.models import Image, TemplateTarget
from smartshare.errors import BuildError, PullError
from smartshare.state.lockfile import LockedBase

if TYPE_CHECKING:
    from smartshare.adoption.assess import Assessment
    from smartshare.adoption.request import Context
    from smartshare.building.engine import DockerEngine


@dataclass(frozen=True)
class BaseImage:
    """An image a stage of one of an app's Dockerfiles starts from."""

    app: str
    image: str  # the app's image (images[].name) whose Dockerfile names it
    dockerfile: str  # in the source tree, for messages
    line: int
    name: str  # as the Dockerfile names it, ARGs substituted: alpine:3.20
    reference: str  # normalised: docker.io/library/alpine:3.20
    source: str  # what is pulled when the engine lacks it: the mirror's reference, or reference

    @property
    def mirrored(self) -> bool:
        return self.source != self.reference

    def describe(self) -> str:
        """``NAME (rewritten by a mirror rule to SOURCE)``, or the name alone."""
        written = self.name if self.name == self.reference else f"{self.name} ({self.reference})"
        if self.mirrored:
            return f"{written}, rewritten by a mirror rule to {self.source}"
        return written


def dockerfile_path(spec: Image) -> str:
    """The Dockerfile of ``spec`` as a path in the source tree (``web/Dockerfile``)."""
    return posixpath.normpath(posixpath.join(spec.context, spec.dockerfile))


def image_bases(ctx: Context, assessment: Assessment) -> list[BaseImage]:
    """The base images of every image ``assessment``'s app builds, in order.

    Raises BuildError for a ``FROM`` that is not an image reference once its
    ARGs are substituted.  A Dockerfile that is missing or not a regular file
    gives none: its build says what is wrong.
    """
    from smartshare.building.dockerfile import DockerfileError, base_images

    app = assessment.app
    region_args = ctx.build_env.args if ctx.build_env is not None else {}
    found: list[BaseImage] = []
    for spec in app.images:
        path = dockerfile_path(spec)
        text = _dockerfile_text(ctx, assessment, path)
        if text is None:
            continue
        try:
            images = base_images(text, {**spec.args, **region_args}, target=spec.target)
        except DockerfileError as exc:
            raise BuildError(
                f"'{app.name}': {path}, {exc.message} (line {exc.line})",
                hint=f"fix the FROM lines of {path}",
            ) from None
        for image in images:
            try:
                reference = str(parse_image_reference(image.name))
            except ValueError as exc:
                shown = (
                    repr(image.name)
                    if image.name == image.written
                    else f"{image.written!r} ({image.name!r} with its ARGs)"
                )
                raise BuildError(
                    f"'{app.name}': {path} line {image.line}: FROM {shown} is not an image "
                    f"reference: {exc}",
                    hint="an ARG used in FROM must be declared before the first FROM, with a "
                    "default or a build argument",
                ) from None
            found.append(
                BaseImage(
                    app=app.name,
                    image=spec.name,
                    dockerfile=path,
                    line=image.line,
                    name=image.name,
                    reference=reference,
                    source=apply_mirrors(reference, ctx.mirrors),
                )
            )
    return found


def _dockerfile_text(ctx: Context, assessment: Assessment, path: str) -> str | None:
    from smartshare.adoption.assess import rendered_contents
    from smartshare.fetching.export import read_text_file

    rendered = [
        f
        for f in assessment.files
        if f.target is TemplateTarget.IMAGE and posixpath.normpath(f.dest) == path
    ]
    if rendered:
        content = next(
            f.content for f in rendered_contents(ctx, assessment) if f.dest == rendered[0].dest
        )
        return (content or b"").decode("utf-8", "replace")
    return read_text_file(resolved=assessment.resolved, path=path)


def provide_bases(
    engine: DockerEngine,
    bases: Sequence[BaseImage],
    *,
    on_pull: Callable[[BaseImage], None] | None = None,
) -> dict[str, LockedBase]:
    """Make every one of ``bases`` available under its name; what each was, by name.

    Those the engine has are left alone.  The others are pulled (from their
    mirror) and, when a rule rewrote them, tagged under the name the Dockerfile
    uses.  Raises PullError listing every base image that could not be had,
    with what it was rewritten to, after trying them all.
    """
    provided: dict[str, LockedBase] = {}
    failures: list[str] = []
    failed: set[str] = set()
    for base in bases:
        if base.name in provided or base.name in failed:
            continue
        image_id = engine.image_id(base.name)
        if image_id is not None:
            provided[base.name] = LockedBase(name=base.name, image_id=image_id)
            continue
        where = f"(image '{base.image}' of '{base.app}', {base.dockerfile} line {base.line})"
        if parse_image_reference(base.reference).digest is not None:
            failed.add(base.name)
            failures.append(
                f"{base.describe()} {where}: it is pinned by a digest, which smartshare "
                "does not pull; pull it into the engine first (docker pull)"
            )
            continue
        if on_pull is not None:
            on_pull(base)
        try:
            image_id = engine.pull(base.source)
            if base.mirrored:
                engine.tag(image_id, base.reference)
        except PullError as exc:
            failed.add(base.name)
            failures.append(f"{base.describe()} {where}: {exc.message}")
            continue
        provided[base.name] = LockedBase(name=base.name, image_id=image_id, pulled_from=base.source)
    if failures:
        mirrored = any(b.mirrored for b in bases)
        raise PullError(
            f"{len(failures)} base image(s) cannot be had, so nothing was built:\n"
            + "\n".join(f"  {failure}" for failure in failures),
            hint=(
                "make the mirror hold these images, or check the image_mirrors rules "
                "(settings file, then the profile's deploy.image_mirrors)"
                if mirrored
                else "give the region a mirror of their registry (image_mirrors: the settings "
                "file or the profile's deploy.image_mirrors), or load them into the engine"
            ),
        )
    return provided


def base_images_of(provided: dict[str, LockedBase], bases: Sequence[BaseImage]) -> list[LockedBase]:
    """What the lock records of ``bases`` (one image's), each once, in order."""
    seen: dict[str, LockedBase] = {}
    for base in bases:
        if base.name in provided and base.name not in seen:
            seen[base.name] = provided[base.name]
    return list(seen.values())
