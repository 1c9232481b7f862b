"""Images: the Docker engine, build contexts, labels, build logs and pushes.

:mod:`.engine` is the one module that calls the engine (``connect``,
``DockerEngine``: build, label, look up, push); :mod:`.enginesocket` answers
the read-only calls of a no-op run over a local socket without docker-py;
:mod:`.context`, :mod:`.labels`, :mod:`.buildlog` and :mod:`.push` hold what
those calls need.  It imports :mod:`smartshare.catalog` (types) and
:mod:`smartshare.fetching.urls` (redaction).  docker-py is imported inside
functions only.  Submodules are not imported here.
"""
