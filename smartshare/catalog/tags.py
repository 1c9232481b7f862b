"""The tag policy: what an app's images are called in a region, and who claims a name.

An image is ``NAMESPACE/IMAGE:VERSION-REGION``, where the namespace is the
region's registry (or ``smartshare`` without one).  Two apps that declare the
same image name would push to the same repository, and with equal versions
overwrite each other's tag, also in the registry: the repository an image goes
to belongs to one app.  ``validate`` checks that across the catalogue and
``adopt`` across its run, both with :func:`repository_clashes`, which asks
:func:`image_repository`: a change of the scheme keeps the check right.
"""

from __future__ import annotations

from collections.abc import Iterable

from smartshare.catalog.diagnostics import Problem
from smartshare.catalog.load import LoadedFile
from smartshare.catalog.models import AppManifest
from smartshare.catalog.profile import RegionProfile
from smartshare.catalog.rules import image_tag_problem
from smartshare.errors import InvalidInputError

# The namespace of every image of a region without a registry.
LOCAL_NAMESPACE = "smartshare"


def image_repository(namespace: str, app: AppManifest, image_name: str) -> str:
    """The repository (reference without the tag) an app's image goes to."""
    return f"{namespace}/{image_name}"


def image_tags(app: AppManifest, region: RegionProfile, image_name: str) -> tuple[str, ...]:
    """The tags an app's image gets for a region: ``NAMESPACE/IMAGE:VERSION-REGION``.

    Raises InvalidInputError when the tag is not one Docker accepts (the
    manifest's version rule keeps that from happening to a validated manifest).
    """
    tag = f"{app.version}-{region.name}"
    problem = image_tag_problem(tag)
    if problem:
        raise InvalidInputError(
            f"app '{app.name}': the image tag {tag[:140]!r} {problem}",
            hint="the tag is VERSION-REGION: fix the manifest's version",
        )
    repository = image_repository(region.registry or LOCAL_NAMESPACE, app, image_name)
    return (f"{repository}:{tag}",)


def repository_clashes(
    claimants: Iterable[LoadedFile[AppManifest]],
    *,
    report: Iterable[LoadedFile[AppManifest]] | None = None,
    namespace: str = LOCAL_NAMESPACE,
) -> list[Problem]:
    """A problem at each image that another app of ``claimants`` would push to as well.

    ``report`` (default: every claimant) limits the files the problems are
    located in; each message names the other app and its file.  Files that
    declare the same app name are not compared (a duplicate name is its own
    error).  ``namespace`` is only shown: it is the same for every app of a
    region, so any one tells which apps would meet.
    """
    every = list(claimants)
    owners: dict[str, list[tuple[LoadedFile[AppManifest], int]]] = {}
    for loaded in every:
        for index, image in enumerate(loaded.model.images):
            repository = image_repository(namespace, loaded.model, image.name)
            owners.setdefault(repository, []).append((loaded, index))
    wanted = None if report is None else {id(loaded) for loaded in report}
    problems: list[Problem] = []
    for repository, claims in owners.items():
        for loaded, index in claims:
            if wanted is not None and id(loaded) not in wanted:
                continue
            others = [
                (other, other_index)
                for other, other_index in claims
                if other.model.name != loaded.model.name
            ]
            if not others:
                continue
            named = ", ".join(
                f"app '{other.model.name}' ({other.doc.display}, images.{other_index}.name)"
                for other, other_index in others
            )
            problems.append(
                loaded.doc.problem(
                    ("images", index, "name"),
                    f"image '{loaded.model.images[index].name}' is also declared by {named}: "
                    f"both would be pushed as {repository} and overwrite each other's tags; "
                    "rename one of them",
                )
            )
    return problems
