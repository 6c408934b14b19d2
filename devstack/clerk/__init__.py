"""Clerk stand-in: Backend API, the FAPI JWKS/discovery documents, and a control surface.

``Clerk().app()`` serves one Clerk instance; ``bind(base_url)`` makes that URL the
token issuer. See :class:`Clerk` for the helpers tests call directly.
"""

from devstack.clerk.errors import ClerkAPIError
from devstack.clerk.service import Clerk

__all__ = ["Clerk", "ClerkAPIError"]
