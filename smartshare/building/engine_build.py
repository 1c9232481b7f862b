"""The image builds of :class:`smartshare.building.engine.DockerEngine`.

Kept apart only for size, as :mod:`.engine_swarm` is: :class:`BuildCalls` is a
base class of ``DockerEngine``.  A build packs the context (:mod:`.context`),
follows the engine's log (:mod:`.buildlog`), writes the labels into the
image's config (:mod:`.labels`), tags the result, and removes what a failed or
cancelled build made and the image a moved tag replaced (:mod:`.engine_cleanup`).
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from smartshare.building.buildlog import BuildTrace, LogCallback, follow_build
from smartshare.building.context import check_context, pack_context
from smartshare.building.engine_cleanup import discard_made, discard_replaced
from smartshare.building.engine_containers import EnginePart
from smartshare.building.labels import (
    NoShortcut,
    check_loaded,
    config_from_saved,
    label_dockerfile,
    labelled_config,
    load_archive,
)
from smartshare.building.push import refuse_credentials, shown_reference, split_reference
from smartshare.errors import BuildError, ExternalError

# Cleaning up needs no more patience than the engine's version probe.
CLEANUP_TIMEOUT_S = 30
_SAVE_CHUNK = 1 << 16


@dataclass(frozen=True)
class BuiltImage:
    """An image the engine has built."""

    image_id: str  # sha256:...
    tags: tuple[str, ...]


class BuildCalls(EnginePart):
    """Building, labelling and tagging images, and the clean-up of what a build made."""

    _timeout: int
    _version: str
    _params: dict[str, Any]

    if TYPE_CHECKING:

        def _streaming(
            self, error: type[ExternalError], doing: str
        ) -> AbstractContextManager[None]: ...

        def image_id(self, reference: str) -> str | None: ...

    def build(
        self,
        *,
        source_dir: Path,
        context: str = ".",
        dockerfile: str,
        tags: Sequence[str],
        labels: Mapping[str, str],
        buildargs: Mapping[str, str] | None = None,
        target: str | None = None,
        network_mode: str | None = None,
        on_log: LogCallback | None = None,
    ) -> BuiltImage:
        """Build ``dockerfile`` (relative to the build context ``context`` of the source tree
        ``source_dir``) and tag the result with ``tags``.

        The context and the Dockerfile must stay inside ``source_dir``
        (:func:`.context.check_context`); ``.git`` never enters the build
        context, whatever ``.dockerignore`` says.  The base images must be in
        the engine already (see :mod:`smartshare.adoption.bases`): the build
        pulls nothing.  ``network_mode`` is the build containers' network
        (``host``, ``none``; None: the engine's default).  Every log line goes
        to ``on_log``.  Raises :class:`BuildError` (UnsafePathError for a
        context or Dockerfile that leaves the tree).
        """
        import docker

        name = shown_reference(tags[0]) if tags else str(source_dir / context)
        folder, dockerfile_rel = check_context(source_dir, context, dockerfile)
        for tag in tags:
            refuse_credentials(tag)
            if not docker.utils.build.match_tag(tag):
                raise BuildError(
                    f"'{shown_reference(tag)}' is not a valid image tag",
                    hint="image names are lower-case: registry/name:tag",
                )
        api = self._api()
        made = BuildTrace()
        try:
            replaced = {self.image_id(tag) for tag in tags}
            with tempfile.TemporaryFile() as archive:
                pack_context(folder, dockerfile_rel, archive)
                # Labels are applied afterwards (see _labelled): the legacy builder
                # turns the API's labels into one LABEL step (one container) per label.
                image_id = self._build_image(
                    api,
                    archive,
                    f"building {name}",
                    name,
                    dockerfile_rel,
                    on_log,
                    made,
                    tag=None if labels else (tags[0] if tags else None),
                    buildargs=dict(buildargs or {}),
                    target=target,
                    network_mode=network_mode,
                )
            if labels:
                image_id = self._labelled(api, image_id, labels, name, on_log, made)
            with self._errors(BuildError, f"tagging {name}"):
                # Labelling leaves its result untagged: no name ever points at an
                # image that might still be replaced.
                for tag in tags if labels else tags[1:]:
                    self._tag(api, image_id, tag)
        except BaseException:
            if made.images or made.containers:
                with self._cleanup_api() as cleanup:
                    discard_made(cleanup, made)
            raise
        replaced_ids = sorted(i for i in replaced if i is not None and i != image_id)
        if replaced_ids:
            with self._cleanup_api() as cleanup:
                discard_replaced(cleanup, replaced_ids)
        return BuiltImage(image_id=image_id, tags=tuple(tags))

    def _labelled(
        self,
        api: Any,
        base_id: str,
        labels: Mapping[str, str],
        name: str,
        on_log: LogCallback | None,
        made: BuildTrace,
    ) -> str:
        """A child of ``base_id`` carrying ``labels``, untagged.

        Writing the labels into a copy of the image's config and loading that
        needs no container, which on some storage drivers (vfs) is what a
        build step costs; an engine that refuses gets the one-step build.
        """
        try:
            with self._streaming(BuildError, f"labelling {name}"):
                image_id = _load_with_labels(api, base_id, labels)
        except NoShortcut as exc:
            if on_log is not None:
                on_log(f"smartshare: labelling with a build step ({exc})")
            return self._label(api, base_id, labels, name, on_log, made)
        made.images.append(image_id)
        if on_log is not None:
            on_log(f"smartshare: labels written into the image config ({image_id[7:19]})")
        return image_id

    def _label(
        self,
        api: Any,
        base_id: str,
        labels: Mapping[str, str],
        name: str,
        on_log: LogCallback | None,
        made: BuildTrace,
    ) -> str:
        """A child of ``base_id`` carrying ``labels``, made by a one-step build."""
        import tarfile  # not at the top: a run that builds nothing needs none

        dockerfile = label_dockerfile(base_id, labels).encode("utf-8")
        with tempfile.TemporaryFile() as archive:
            with tarfile.open(fileobj=archive, mode="w") as tar:
                info = tarfile.TarInfo("Dockerfile")
                info.size = len(dockerfile)
                tar.addfile(info, io.BytesIO(dockerfile))
            archive.seek(0)
            return self._build_image(
                api, archive, f"labelling {name}", name, "Dockerfile", on_log, made
            )

    def _build_image(
        self,
        api: Any,
        archive: IO[bytes],
        doing: str,
        name: str,
        dockerfile: str,
        on_log: LogCallback | None,
        made: BuildTrace,
        **options: Any,
    ) -> str:
        """Build the packed context ``archive``, following the engine's stream; the image id."""
        with (
            self._streaming(BuildError, doing),
            self._errors(BuildError, doing, dockerfile=dockerfile),
        ):
            chunks = api.build(
                fileobj=archive,
                custom_context=True,
                dockerfile=dockerfile,
                decode=True,
                rm=True,
                forcerm=True,
                pull=False,
                timeout=self._timeout,
                **options,
            )
            image_id = follow_build(chunks, name, dockerfile, on_log, made=made)
            if not image_id.startswith("sha256:"):
                image_id = str(api.inspect_image(image_id)["Id"])
        return image_id

    def _tag(self, api: Any, image_id: str, reference: str) -> None:
        repo, tag = split_reference(reference)
        if not api.tag(image_id, repo, tag, force=True):
            raise BuildError(f"the engine did not tag {image_id} as {reference}")

    @contextmanager
    def _cleanup_api(self) -> Iterator[Any]:
        """A client of its own: the build's may have been cut, and errors are not reported."""
        import docker

        api = docker.APIClient(version=self._version, timeout=CLEANUP_TIMEOUT_S, **self._params)
        try:
            yield api
        finally:
            api.close()


def _load_with_labels(api: Any, base_id: str, labels: Mapping[str, str]) -> str:
    """Load a copy of ``base_id``'s config carrying ``labels``; return the new image's id.

    Raises :class:`NoShortcut` for any failure: the caller then labels by a
    build step, which reports engine failures properly.
    """
    import tarfile

    import docker
    import requests
    import urllib3

    try:
        base_config = _saved_config(api, base_id)
        if base_config is None:
            raise NoShortcut("the engine's saved image holds no config matching its id")
        config, diff_ids = labelled_config(base_config, labels)
        archive, new_id = load_archive(config, diff_ids, base_id=base_id, base_config=base_config)
        chunks = api.load_image(archive, quiet=True)
        if chunks is None:  # API < 1.23 reports nothing to check
            raise NoShortcut("the engine does not report what it loaded")
        check_loaded(chunks, new_id)
        return new_id
    except (
        docker.errors.DockerException,
        requests.exceptions.RequestException,
        urllib3.exceptions.HTTPError,
        tarfile.TarError,
        OSError,
        ValueError,  # also JSON and UTF-8 decoding errors
    ) as exc:
        raise NoShortcut(f"{type(exc).__name__}: {exc}".strip()) from exc


def _saved_config(api: Any, image_id: str) -> bytes | None:
    """The config of ``image_id`` byte for byte as the engine stores it, else None.

    Only ``docker save`` hands out the stored bytes. The engine writes the whole
    archive (every layer of the image) before it sends anything, so this costs
    what tarring the image costs; stopping at the config spares only the transfer.
    """
    # Not api.get_image(): it switches the read timeout off, and a wedged
    # engine would hang the run here.
    response = api._get(api._url("/images/{0}/get", image_id), stream=True)
    api._raise_for_status(response)
    try:
        return config_from_saved(response.iter_content(chunk_size=_SAVE_CHUNK), image_id)
    finally:
        # The rest stays unread: closing the response closes its socket.
        response.close()
