"""RS256 signing keys and the JWKS that publishes them.

Clerk documents nothing about rotation, so the stand-in models the common practice:
a new key signs from the moment of rotation while older public keys stay published
until dropped, so tokens signed before the rotation keep verifying.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ALGORITHM = "RS256"
KEY_BITS = 2048


@dataclass(frozen=True)
class SigningKey:
    """One RSA key pair and its key id."""

    kid: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh 2048-bit key with a Clerk-like ``ins_``-style random kid."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        return cls(kid="ins_" + secrets.token_hex(12), private_key=key)

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK with ``kid``, ``alg`` and ``use`` (as Clerk serves it)."""
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}


class KeyRing:
    """The current signing key plus the retired keys that are still published."""

    def __init__(self) -> None:
        self._current = SigningKey.generate()
        self._retired: list[SigningKey] = []

    @property
    def current_kid(self) -> str:
        """The ``kid`` that new tokens carry."""
        return self._current.kid

    def rotate(self, *, drop_old: bool = False) -> str:
        """Sign with a new key from now on; keep publishing old keys unless ``drop_old``."""
        self._retired.insert(0, self._current)
        self._current = SigningKey.generate()
        if drop_old:
            self._retired.clear()
        return self._current.kid

    def drop_retired(self) -> None:
        """Stop publishing retired keys: tokens they signed no longer verify."""
        self._retired.clear()

    def jwks(self) -> dict[str, Any]:
        """``{"keys": [...]}``: the current key first, then retired ones still published."""
        return {"keys": [key.public_jwk() for key in (self._current, *self._retired)]}

    def sign(self, claims: dict[str, Any], extra_headers: dict[str, Any]) -> str:
        """An RS256 JWT with ``kid`` (PyJWT adds ``alg`` and ``typ: JWT``)."""
        headers = {**extra_headers, "kid": self._current.kid}
        return jwt.encode(claims, self._current.private_key, algorithm=ALGORITHM, headers=headers)
