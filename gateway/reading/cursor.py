"""The opaque cursor of a page: where the next page starts, sealed so that it can't be forged.

A cursor names one row's place in the order (:class:`~..stores.reads.Position`) and is sealed
with a MAC keyed by the project's secret over that place and the query it belongs to (the
filter, the channels read, the order). A cursor is therefore only good for the query that gave
it: changed by a byte, carried to another project, or replayed with other filters, it is refused,
so a client can neither step around its scope nor make the stores seek to a place of its choice.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from typing import Final

from voxloop_core import CHANNEL_PATTERN, key_maker

from ..stores.reads import Position

#: The longest cursor this module makes (8 + 1 + 16 + 64 + 16 bytes, base64): longer is not one.
MAX_CURSOR_CHARS: Final = 160
_MAC_BYTES: Final = 16
_HEAD: Final = struct.Struct(">qB")  # ts_ms, length of the key
_PERSON: Final = b"voxloop-cursor"
_CHANNEL: Final = re.compile(CHANNEL_PATTERN)
_TEXT: Final = re.compile(r"[A-Za-z0-9_-]+")


class CursorError(ValueError):
    """A cursor this gateway did not give for this query (malformed, altered or misplaced)."""


def encode(position: Position, secret: bytes, context: bytes) -> str:
    """The cursor of ``position`` for the query ``context`` (its canonical bytes).

    Args:
        position: the last row of the page: the next page starts after it.
        secret: the project's secret, which keys the seal.
        context: what the cursor is good for: the query's filter, channels and order.
    """
    payload = _HEAD.pack(position.ts_ms, len(position.key)) + position.key
    payload += position.channel.encode()
    sealed = payload + _seal(payload, secret, context)
    return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()


def decode(text: str, secret: bytes, context: bytes) -> Position:
    """The position a cursor names, if it was made by :func:`encode` for this ``context``.

    Raises:
        CursorError: the text is not such a cursor; the message says which way it fails.
    """
    if not 0 < len(text) <= MAX_CURSOR_CHARS or not _TEXT.fullmatch(text):
        raise CursorError("not a cursor this gateway gives (base64url text from `next`)")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise CursorError("not a cursor this gateway gives (base64url text from `next`)") from None
    payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    if len(payload) < _HEAD.size or not hmac.compare_digest(mac, _seal(payload, secret, context)):
        raise CursorError("altered, or given for another query: ask again from the first page")
    ts_ms, key_length = _HEAD.unpack_from(payload)
    key = payload[_HEAD.size : _HEAD.size + key_length]
    channel = payload[_HEAD.size + key_length :].decode(errors="replace")
    if len(key) != key_length or not _CHANNEL.fullmatch(channel):
        raise CursorError("altered, or given for another query: ask again from the first page")
    return Position(ts_ms, key, channel)


def _seal(payload: bytes, secret: bytes, context: bytes) -> bytes:
    # The core's MAC key for the secret (its own digest when over 64 bytes), with a
    # personalisation of its own: a cursor's seal can't be confused with a dedup key or a
    # pseudonym made from the same secret.
    mac = hashlib.blake2b(key=key_maker(secret).mac_key, digest_size=_MAC_BYTES, person=_PERSON)
    mac.update(len(payload).to_bytes(4, "big"))
    mac.update(payload)
    mac.update(context)
    return mac.digest()
