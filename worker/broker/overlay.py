"""The Kustomize overlay of one org's worker in broker mode (no Clerk secret in it).

The same files ``deploy/new-org`` writes (``tests/deploy`` checks both render alike):
``kustomization.yaml`` (name suffix, ``org`` label, the org's ConfigMap) and ``org.env``
(``ORG_ID``, ``WORKER_TOPICS``). The worker's ServiceAccount is the base's with the
org's suffix; the broker's orgs file maps it to the org (``service_account``).
"""

from __future__ import annotations

import hashlib

__all__ = ["BASE_NAME", "name_suffix", "render_env", "render_kustomization", "service_account"]

BASE_NAME = "realtime-worker"


def name_suffix(org_id: str) -> str:
    """``-org-2abc``; a short hash of the exact id when lowercasing loses information."""
    slug = org_id.lower().replace("_", "-")
    if org_id != org_id.lower():
        slug += "-" + hashlib.sha256(org_id.encode()).hexdigest()[:6]
    return "-" + slug


def service_account(org_id: str, namespace: str) -> str:
    """The subject of the org worker's projected ServiceAccount token."""
    return f"system:serviceaccount:{namespace}:{BASE_NAME}{name_suffix(org_id)}"


def render_kustomization(org_id: str, namespace: str, base: str = "../../base") -> str:
    suffix = name_suffix(org_id)
    return f"""\
# The realtime-worker for Clerk organization {org_id}.
# Written by deploy/new-org (or realtime-worker provision --overlay); per-org settings
# are in org.env. No Clerk secret: the worker gets its tokens from the token broker
# with its ServiceAccount's projected token (docs/operations.md).
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization

namespace: {namespace}
nameSuffix: {suffix}

resources:
  - {base}

# `org` on the pod becomes a target label on every scraped series (PodMonitor
# podTargetLabels, or labelmap in a kubernetes-pods scrape job). In the selectors too,
# so this org's Deployment, Service, PodMonitor and NetworkPolicy never select another
# org's pod.
labels:
  - pairs:
      org: {org_id}
      app.kubernetes.io/instance: {BASE_NAME}{suffix}
    includeSelectors: true
    includeTemplates: true

configMapGenerator:
  - name: realtime-worker-config
    behavior: merge
    envs:
      - org.env
"""


def render_env(org_id: str, topics: list[str]) -> str:
    return f"""\
# Settings of the realtime-worker for {org_id}, merged over deploy/base/worker.env.
ORG_ID={org_id}
WORKER_TOPICS={",".join(topics)}
"""
