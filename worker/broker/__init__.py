"""The token broker: the only process that holds the Clerk secret key.

It owns: the orgs file (which caller identity may have which org's tokens), caller
identification (Kubernetes ServiceAccount tokens against the cluster's OIDC JWKS, or
static credentials stored hashed), one cached token per org minted through a per-org
token source (``SourceFactory``), and its own HTTP server (aiohttp), metrics and logs.
It never touches Realtime, dispatch, delivery, handlers or the worker's composition,
and no worker part imports it: workers reach it over HTTP only, through
``worker.tokens.sources.broker``.
"""

from __future__ import annotations

from worker.broker.cache import CachedToken, SourceFactory, TokenCache
from worker.broker.config import BrokerSettings
from worker.broker.identity import Caller, Denied, DenyReason, Identify, ServiceAccountVerifier
from worker.broker.orgs import OrgEntry, Orgs, hash_credential, load_orgs, new_credential
from worker.broker.service import Broker

__all__ = [
    "Broker",
    "BrokerSettings",
    "CachedToken",
    "Caller",
    "Denied",
    "DenyReason",
    "Identify",
    "OrgEntry",
    "Orgs",
    "ServiceAccountVerifier",
    "SourceFactory",
    "TokenCache",
    "hash_credential",
    "load_orgs",
    "new_credential",
]
