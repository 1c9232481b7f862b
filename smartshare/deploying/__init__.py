"""``deploy``, ``ps`` and ``down``: run the adopted apps of a region as one stack.

The stack (:mod:`.stack`) says, independently of the target, which containers
run which images with which values, secrets, files, volumes, ports and health
checks; a target (:mod:`.target`; Docker Compose in :mod:`.compose`) turns it
into its file and runs it.
"""
