"""Config value objects: named defaults, checked at construction, and the backoff rule."""

from __future__ import annotations

from email.utils import formatdate
from time import time
from typing import Any

import pytest

import voxloop
from voxloop._outbox import _retry_after


def test_defaults_are_named_and_within_the_gateways_limits() -> None:
    config = voxloop.DEFAULT_CONFIG
    assert config.batching is voxloop.DEFAULT_BATCHING
    assert config.retry is voxloop.DEFAULT_RETRY
    assert config.timeout is voxloop.DEFAULT_TIMEOUT
    assert config.batching.max_events <= 1000 and config.batching.max_bytes <= 1024 * 1024
    assert config.spool_path is None and config.sync_mode is False


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: voxloop.Batching(max_events=1001), r"Batching.max_events must be within 1..1000"),
        (lambda: voxloop.Batching(max_bytes=2**21), r"Batching.max_bytes must be within"),
        (lambda: voxloop.Batching(interval=-1), r"Batching.interval must be within"),
        (lambda: voxloop.Retry(attempts=0), r"Retry.attempts must be within"),
        (lambda: voxloop.Retry(jitter=1.5), r"Retry.jitter must be within 0..1"),
        (lambda: voxloop.Retry(cap=float("nan")), r"Retry.cap must be a number"),
        (lambda: voxloop.Timeout(read=0), r"Timeout.read must be within"),
        (lambda: voxloop.Config(queue_size=True), r"Config.queue_size must be an integer"),
        (lambda: voxloop.Config(sync_mode=1), r"Config.sync_mode must be True or False"),
        (lambda: voxloop.Config(spool_path=""), r"Config.spool_path must not be empty"),
        (lambda: voxloop.Config(retry=3), r"Config.retry must be a Retry"),
        (lambda: voxloop.Config().replace(batch=3), r"unexpected keyword argument 'batch'"),
    ],
    ids=[
        "max-events",
        "max-bytes",
        "interval",
        "attempts",
        "jitter",
        "nan",
        "read-timeout",
        "queue-size-bool",
        "sync-mode",
        "empty-spool",
        "retry-type",
        "replace-unknown",
    ],
)
def test_a_wrong_setting_fails_at_once_naming_it(make: Any, message: str) -> None:
    with pytest.raises(voxloop.ConfigError, match=message):
        make()


@pytest.mark.parametrize(
    ("endpoint", "key"),
    [
        ("feedback.example.com", "sk_x"),
        ("ftp://feedback.example.com", "sk_x"),
        ("https://feedback.example.com?x=1", "sk_x"),
        ("https://feedback.example.com:99999", "sk_x"),
        ("https://feedback.example.com", ""),
        ("https://feedback.example.com", "sk_x\r\nX-Evil: 1"),
        ("https://feedback.example.com", "sk x"),
    ],
    ids=["no-scheme", "ftp", "query", "port", "empty-key", "header-injection", "space"],
)
def test_a_wrong_endpoint_or_key_fails_at_construction(endpoint: str, key: str) -> None:
    with pytest.raises(voxloop.ConfigError):
        voxloop.Client(endpoint, key, config=voxloop.Config(flush_at_exit=False))


def test_backoff_doubles_up_to_the_cap() -> None:
    retry = voxloop.Retry(backoff=1.0, cap=30.0, jitter=0.0)
    assert [retry.delay(n, None, 0.5) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert retry.delay(10_000, None, 0.0) == 30


def test_jitter_only_shortens_the_wait() -> None:
    retry = voxloop.Retry(backoff=1.0, cap=30.0, jitter=0.5)
    assert retry.delay(3, None, 0.0) == 8
    assert retry.delay(3, None, 0.999) == pytest.approx(4.004)


def test_retry_after_is_a_floor_and_bounded() -> None:
    retry = voxloop.Retry(backoff=1.0, cap=30.0, jitter=0.5, max_retry_after=120)
    assert retry.delay(0, 7.0, 0.5) == 7.0
    assert retry.delay(4, 7.0, 0.0) == 16.0
    assert retry.delay(0, 3600.0, 0.0) == 120.0


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    assert _retry_after("3") == 3.0
    assert _retry_after(None) is None
    assert _retry_after("soon") is None
    in_ten = _retry_after(formatdate(time() + 10, usegmt=True))
    assert in_ten is not None and 8 <= in_ten <= 10
    assert _retry_after(formatdate(time() - 100, usegmt=True)) == 0.0
