"""The keys under which validation keeps an app's results between runs.

Light to import: a run looks for them before it knows whether it must
import the checks (:mod:`smartshare.validation`).
"""

from __future__ import annotations

import hashlib


def own_key(templates_shown: str, manifest_digest: str) -> str:
    """The memo key of an app's own problems: its manifest's digest, its templates folder shown."""
    return hashlib.sha256(f"{templates_shown}\0{manifest_digest}".encode()).hexdigest()
