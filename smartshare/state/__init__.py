"""What is on disk: the workspace, its lock file, and how both drift from the catalogue.

Confined and atomic writes (:mod:`.safefs`), the one ``flock`` helper
(:mod:`.locking`), the lock file (:mod:`.lockfile`), the workspace layout
(:mod:`.workspace`), drift (:mod:`.drift`) and ``status``.  It imports
:mod:`smartshare.catalog` only; adoption (and deployment after it) build on
it.  Submodules are not imported here.
"""
