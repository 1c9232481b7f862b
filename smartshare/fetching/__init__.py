"""Getting an app's source: the git mirror cache, the one git runner, the tree export.

:mod:`.mirror` resolves a manifest's ref to a commit in a cached bare mirror;
:mod:`.export` writes that commit's tree into a folder without ``.git``;
:mod:`.gitrunner` runs every git process (environment, credentials, timeouts,
redaction); :mod:`.urls` shows URLs without credentials.  It imports
:mod:`smartshare.catalog` (its rules) and :mod:`smartshare.state` (the lock
helper).  GitPython is imported only to fetch or export, never for queries.
Submodules are not imported here.
"""
