"""Render templates in worker processes that the limits can stop.

A template from another region can ask for anything: a 100 MB string, a loop
that never ends, a macro calling itself.  Hooks inside Jinja would have to
foresee every way (``~``, ``center``, ``'%*s' | format``, recursion...);
a process can simply be stopped.  So templates are rendered by
:mod:`.worker` processes, each limited in memory and CPU time, while this
side watches the wall clock and stops a worker that takes too long.

A :class:`RenderPool` starts a worker only when something is rendered (a run
with nothing to render starts none), one per thread rendering at the same time
(``--jobs``), and reuses it; a worker that was stopped is replaced by a new
one for the next render.  Secrets reach a worker only through its stdin, and
only for runtime renders: an image render's request leaves them out.
Runtime strings of a manifest (environment values, outputs) are rendered by
workers too, but for those that only print names, which need no Jinja.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import smartshare
from smartshare.errors import ExternalError, OutputSchemaError, TemplateRenderError
from smartshare.rendering.limits import RenderLimits

if TYPE_CHECKING:
    from smartshare.rendering.schemacheck import OutputCheck

# Starting Python and importing Jinja takes 0.1-0.3 s; on a busy machine more.
START_TIMEOUT = 60.0
_PACKAGE_ROOT = str(Path(smartshare.__file__).resolve().parent.parent)


class RenderPool:
    """Render workers for one run; close it (or use ``with``) to stop them."""

    def __init__(self, limits: RenderLimits) -> None:
        self.limits = limits
        self._idle: list[_Worker] = []
        self._started: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> RenderPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def render(
        self,
        *,
        templates_dir: Path,
        templates: Sequence[str],
        context: Mapping[str, Any],
        secret_names: Collection[str],
        runtime: bool,
    ) -> list[bytes]:
        """Render ``templates`` in order, each with a fresh state; their UTF-8 texts.

        ``runtime`` renders see the secret parameters' values; the others get
        placeholders that fail when used (the values are not even sent).
        Raises TemplateRenderError naming the template, for a template error
        or a limit; ExternalError when no worker can be started.
        """
        if not templates:
            return []
        params = dict(context.get("params", {}))
        if not runtime:
            params = {k: v for k, v in params.items() if k not in secret_names}
        request = {
            "templates_dir": str(templates_dir.absolute()),
            "templates": list(templates),
            "context": {**context, "params": params},
            "secret_names": sorted(secret_names),
            "runtime": runtime,
            "limits": dataclasses.asdict(self.limits),
        }
        answers = self._exchange(request, [f"template {name}" for name in templates])
        return [str(answer["content"]).encode("utf-8") for answer in answers]

    def render_strings(
        self,
        *,
        templates_dir: Path,
        texts: Mapping[str, str],
        context: Mapping[str, Any],
        secret_names: Collection[str],
    ) -> dict[str, str]:
        """Render manifest strings (build arguments) as an image render: ``texts`` by label.

        The secret parameters are placeholders that fail when used (their
        values are not sent).  Raises TemplateRenderError naming the label.
        """
        if not texts:
            return {}
        params = {k: v for k, v in context.get("params", {}).items() if k not in secret_names}
        labels = list(texts)
        request = {
            "kind": "strings",
            "templates_dir": str(templates_dir.absolute()),
            "templates": labels,
            "texts": [texts[label] for label in labels],
            "context": {**context, "params": params},
            "secret_names": sorted(secret_names),
            "runtime": False,
            "limits": dataclasses.asdict(self.limits),
        }
        answers = self._exchange(request, labels)
        return {
            label: str(answer["content"]) for label, answer in zip(labels, answers, strict=True)
        }

    def render_runtime_strings(
        self, texts: Mapping[str, str], context: Mapping[str, Any], *, what: Callable[[str], str]
    ) -> dict[str, str]:
        """Render runtime strings of a manifest (environment values, outputs): ``texts`` by key.

        ``context`` holds no secret (:func:`.outputs.runtime_context`).  A
        string without Jinja, or that only prints names
        (``http://{{ services.web.host }}:8080``), renders here; the others in
        a worker, under the limits, so a run whose strings are all of that
        kind starts none.  Raises TemplateRenderError naming the string by
        ``what(key)``.
        """
        from smartshare.rendering.sandbox import substitute_names

        rendered: dict[str, str | None] = {
            key: substitute_names(text, context, max_bytes=self.limits.output_bytes)
            for key, text in texts.items()
        }
        left = [key for key, text in rendered.items() if text is None]
        if left:
            labels = [what(key) for key in left]
            request = {
                "kind": "runtime-strings",
                "labels": labels,
                "texts": [texts[key] for key in left],
                "context": context,
                "limits": dataclasses.asdict(self.limits),
            }
            answers = self._exchange(request, labels)
            rendered.update(
                (key, str(answer["content"])) for key, answer in zip(left, answers, strict=True)
            )
        return {key: text for key, text in rendered.items() if text is not None}

    def check_outputs(self, checks: Sequence[OutputCheck]) -> None:
        """Check rendered files against their schemas; OutputSchemaError for the first that fails.

        In a worker, under the render limits: a schema's patterns are another
        region's code too.
        """
        if not checks:
            return
        request = {
            "kind": "check",
            "checks": [dataclasses.asdict(check) for check in checks],
            "limits": dataclasses.asdict(self.limits),
        }
        self._exchange(
            request, [f"schema check of {check.dest}" for check in checks], error=OutputSchemaError
        )

    def _exchange(
        self,
        request: Mapping[str, Any],
        labels: list[str],
        *,
        error: type[TemplateRenderError] = TemplateRenderError,
    ) -> list[dict[str, Any]]:
        worker = self._acquire()
        try:
            return worker.exchange(request, labels, error=error)
        finally:
            self._release(worker)

    def prestart(self) -> None:
        """Start a worker now, so that it is ready when the first render comes.

        Starting one (Python, Jinja) takes 0.1-0.3 s; a run that will render
        calls this before it resolves sources, which takes about as long.
        Renders take milliseconds, so threads mostly find this one idle; a
        thread that finds none starts another.
        """
        with self._lock:
            if not self._closed and not self._idle:
                worker = _Worker(self.limits)
                self._started.append(worker)
                self._idle.append(worker)

    def close(self) -> None:
        """Stop every worker (they hold no state worth keeping), those rendering too.

        A render in progress then fails (its thread cleans up its worker);
        the run is being interrupted or is over.
        """
        with self._lock:
            self._closed = True
            idle = self._idle
            busy = [worker for worker in self._started if worker not in idle]
            self._started, self._idle = busy, []
        for worker in busy:
            worker.kill()
        for worker in idle:
            worker.stop()

    def _acquire(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise ExternalError("rendering was stopped")
            while self._idle:
                worker = self._idle.pop()
                if worker.alive:
                    return worker
            worker = _Worker(self.limits)
            self._started.append(worker)
            return worker

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            if worker.alive and not self._closed:
                self._idle.append(worker)
                return
            if worker in self._started:
                self._started.remove(worker)
        worker.stop()


class _Worker:
    """One worker process, used by one thread at a time."""

    def __init__(self, limits: RenderLimits) -> None:
        self.limits = limits
        argv = [sys.executable, "-s", "-P", "-m", "smartshare.rendering.worker"]
        try:
            self.process = subprocess.Popen(
                [*argv, str(limits.memory_bytes)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                # Nothing of the parent's environment (secret references
                # resolve from it): only where to find smartshare.
                env={"PYTHONPATH": _PACKAGE_ROOT},
                cwd="/",
                # Its own session: Ctrl-C in the terminal reaches the parent only.
                start_new_session=True,
            )
        except OSError as exc:
            raise ExternalError(
                f"the render worker could not be started: {exc.strerror or exc}"
            ) from None
        self._buffer = bytearray()
        self._ready = False
        self._stopped_by_us = False

    @property
    def alive(self) -> bool:
        return self.process.poll() is None and not self._stopped_by_us

    def exchange(
        self,
        request: Mapping[str, Any],
        names: list[str],
        *,
        error: type[TemplateRenderError] = TemplateRenderError,
    ) -> list[dict[str, Any]]:
        """Send ``request``; its answers, one per name (``names``: what messages call each)."""
        if not self._ready:
            self._await_ready()
        assert self.process.stdin is not None
        try:
            # default=str: as the render inputs digest, for a date from YAML
            self.process.stdin.write(json.dumps(request, default=str).encode("ascii") + b"\n")
            self.process.stdin.flush()
        except OSError:
            raise self._ended(names[0]) from None
        answers = []
        for name in names:
            try:
                answer = self._read(time.monotonic() + self.limits.seconds)
            except _TimedOut:
                self.stop()
                raise TemplateRenderError(
                    f"{name}: took longer than {self.limits.seconds:g} s "
                    "(the limit per template); stopped",
                    hint="raise render_limits.seconds in the settings file if the template "
                    "needs the time",
                ) from None
            except _Ended:
                raise self._ended(name) from None
            if "error" in answer:
                if answer.get("retire"):
                    self.stop()
                raise error(_text(answer["error"]), hint=_hint(answer.get("hint")))
            answers.append(answer)
        return answers

    def _await_ready(self) -> None:
        try:
            answer = self._read(time.monotonic() + START_TIMEOUT)
        except (_TimedOut, _Ended):
            answer = None
        if answer != {"ready": True}:
            self.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
            assert self.process.stderr is not None
            # Nothing was sent to it yet: what it printed holds no secret.
            said = self.process.stderr.read(4000).decode("utf-8", "replace").strip()
            self.stop()
            raise ExternalError(
                "the render worker did not start" + (f": {said.splitlines()[-1]}" if said else ""),
                hint=f"{sys.executable} must be able to import smartshare and jinja2",
            )
        self._ready = True

    def _read(self, deadline: float) -> dict[str, Any]:
        """The worker's next answer; _TimedOut when ``deadline`` passes first, _Ended at EOF."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        # JSON may escape each character into 6 bytes (\uXXXX).
        most = 6 * self.limits.output_bytes + 65536
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        scanned = 0
        while (end := self._buffer.find(b"\n", scanned)) < 0:
            scanned = len(self._buffer)
            left = deadline - time.monotonic()
            if left <= 0:
                raise _TimedOut
            if not poller.poll(min(left, 1.0) * 1000):
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk or len(self._buffer) + len(chunk) > most:
                raise _Ended
            self._buffer += chunk
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        try:
            answer = json.loads(line)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise _Ended
        return answer

    def _ended(self, name: str) -> TemplateRenderError:
        """What to say about a worker that ended (or went wrong) while rendering ``name``."""
        stopped = self._stopped_by_us
        self.kill()
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        self.stop()
        if stopped:
            return TemplateRenderError(f"{name}: rendering was stopped")
        if code == -signal.SIGXCPU:
            return TemplateRenderError(
                f"{name}: used more than {self.limits.seconds + 1:g} s of CPU time "
                "(the limit per template); stopped"
            )
        if code == -signal.SIGKILL:
            return TemplateRenderError(
                f"{name}: the render worker was killed (out of memory?) while working on it",
                hint="lower render_limits.memory_mib below the memory this machine can give",
            )
        what = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return TemplateRenderError(
            f"{name}: the render worker stopped unexpectedly ({what}) while working on it"
        )

    def kill(self) -> None:
        """Stop the process; safe from any thread (the streams are left to the owner)."""
        self._stopped_by_us = True
        if self.process.poll() is None:
            self.process.kill()

    def stop(self) -> None:
        """Stop the process and close its streams (by the thread using it, or when idle)."""
        self._stopped_by_us = True
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class _TimedOut(Exception):
    """The worker did not answer in time."""


class _Ended(Exception):
    """The worker's output ended, or made no sense: it is to be stopped."""


def _text(value: object) -> str:
    # A message may hold a lone surrogate (an image render's detail): printable anyway.
    return str(value).encode("utf-8", "replace").decode("utf-8")


def _hint(value: object) -> str | None:
    return None if value is None else _text(value)
