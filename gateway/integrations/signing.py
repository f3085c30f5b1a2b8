"""Standard Webhooks signatures: ``whsec_`` secrets, and the three headers of every delivery.

The `Standard Webhooks <https://www.standardwebhooks.com/>`_ specification is what receivers'
libraries verify (``standardwebhooks``, Svix's, many frameworks' own): a secret is ``whsec_``
and the base64 of its key; a message is signed as ``v1,`` and the base64 HMAC-SHA256 of
``id.timestamp.body`` with that key; ``webhook-signature`` holds one or more signatures,
separated by spaces, and a receiver accepts the message when any of them is right for its
secret. That last rule is what makes rotation safe: while a rotated secret overlaps
(:data:`ROTATION_OVERLAP_MS`), every delivery is signed with the new secret and the previous
one, so a receiver still holding the old secret goes on verifying until it is given the new.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Final

#: How a secret starts, per the specification.
SECRET_PREFIX: Final = "whsec_"
#: Random bytes in a secret's key: 256 bits, the size of HMAC-SHA256's block halves.
SECRET_BYTES: Final = 32
#: How long the previous secret still signs after a rotation: a day for receivers to switch.
ROTATION_OVERLAP_MS: Final = 24 * 3600 * 1000

ID_HEADER: Final = "webhook-id"
TIMESTAMP_HEADER: Final = "webhook-timestamp"
SIGNATURE_HEADER: Final = "webhook-signature"


def new_secret() -> str:
    """A new secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of ``secret`` (its base64 part, decoded).

    Raises:
        ValueError: ``secret`` is not ``whsec_`` and base64.
    """
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX}")
    key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    if not key:
        raise ValueError("a webhook secret holds a key")
    return key


def sign(secret: str, msg_id: str, timestamp_s: int, body: bytes) -> str:
    """The signature of one message: ``v1,`` and the base64 HMAC-SHA256 of ``id.timestamp.body``.

    Args:
        secret: the endpoint's ``whsec_`` secret.
        msg_id: the message's id, the same on every attempt (``webhook-id``).
        timestamp_s: when this attempt is sent, in whole seconds since the epoch.
        body: the exact bytes sent.
    """
    signed = f"{msg_id}.{timestamp_s}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signing_secrets(
    secret: str, previous: str | None, previous_until_ms: int | None, now_ms: int
) -> tuple[str, ...]:
    """The secrets a delivery at ``now_ms`` is signed with: the current one, and the previous
    one while its overlap lasts (until ``previous_until_ms``, excluded)."""
    if previous is not None and previous_until_ms is not None and now_ms < previous_until_ms:
        return (secret, previous)
    return (secret,)


def headers(
    msg_id: str, timestamp_s: int, body: bytes, secrets_: tuple[str, ...]
) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt, signed with each of ``secrets_``."""
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp_s),
        SIGNATURE_HEADER: " ".join(sign(s, msg_id, timestamp_s, body) for s in secrets_),
    }


__all__ = [
    "ID_HEADER",
    "ROTATION_OVERLAP_MS",
    "SECRET_BYTES",
    "SECRET_PREFIX",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "headers",
    "new_secret",
    "secret_key",
    "sign",
    "signing_secrets",
]
