"""Names a stack's containers carry, shared by every target (and by ``ps``, which loads little)."""

from __future__ import annotations

SERVICE = "service"
JOB = "job"

# Labels of every container (or swarm service) of a stack.
LABEL_APP = "id.smartshare.app"
LABEL_REGION = "id.smartshare.region"
LABEL_SERVICE = "id.smartshare.service"  # the name in the manifest (web)
LABEL_KIND = "id.smartshare.kind"  # service | job
LABEL_CONFIG = "id.smartshare.config"  # keyed digest of the configuration and its files

# Labels of what deploy makes besides containers (swarm secrets).
LABEL_PROJECT = "id.smartshare.project"
# Which file of which container a swarm secret holds: <stack name>-param-<param>...
LABEL_SECRET = "id.smartshare.secret"  # noqa: S105 - a label name, no secret
