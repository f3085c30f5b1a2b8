"""Standard Webhooks signatures, checked against the official ``standardwebhooks`` package."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from voxloop_gateway.integrations import signing

BODIES = [
    b"{}",
    b'{"type":"response.created","data":{"comment":"tr\xc3\xa8s bien \xf0\x9f\x91\x8d"}}',
]


def test_a_secret_is_whsec_and_the_base64_of_32_random_bytes() -> None:
    made = {signing.new_secret() for _ in range(20)}
    assert len(made) == 20
    for secret in made:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret[len("whsec_") :], validate=True)) == 32
        assert signing.secret_key(secret) == base64.b64decode(secret[6:])


@pytest.mark.parametrize("body", BODIES, ids=["empty-object", "unicode"])
def test_a_signature_is_the_official_packages(body: bytes) -> None:
    secret = signing.new_secret()
    stamp = 1_800_000_000
    ours = signing.sign(secret, "msg_abc", stamp, body)
    theirs = Webhook(secret).sign("msg_abc", datetime.fromtimestamp(stamp, UTC), body.decode())
    assert ours == theirs and ours.startswith("v1,")


def test_headers_signed_with_two_secrets_verify_with_either() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    body = BODIES[1]
    sent = signing.headers("msg_1", int(time.time()), body, (new, old))
    assert set(sent) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert len(sent["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(body, sent)["type"] == "response.created"
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, sent)
    # A body changed on the way fails.
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body.replace(b"bien", b"mal!"), sent)


def test_the_previous_secret_signs_until_its_overlap_ends() -> None:
    now = 1_800_000_000_000
    until = now + signing.ROTATION_OVERLAP_MS
    assert signing.signing_secrets("a", "b", until, now) == ("a", "b")
    assert signing.signing_secrets("a", "b", until, until - 1) == ("a", "b")
    assert signing.signing_secrets("a", "b", until, until) == ("a",)
    assert signing.signing_secrets("a", None, None, now) == ("a",)


@pytest.mark.parametrize(
    "bad", ["abc", "whsec_", "whsec_not base64!"], ids=["no-prefix", "empty", "junk"]
)
def test_a_secret_that_is_not_whsec_base64_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        signing.secret_key(bad)
