"""The application key under which every Clerk sub-application finds its instance."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from devstack.clerk.service import Clerk

CLERK: web.AppKey[Clerk] = web.AppKey("clerk")
