"""voxloop's hot path: decode, validate, deduplicate and aggregate feedback events.

It knows nothing of HTTP or storage. ``IMPLEMENTATION`` says which twin is loaded: "accelerated"
(the Cython extension) or "pure" (the reference), and ``FALLBACK_REASON`` why, when it is pure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._decode import decode_batch
from ._errors import BodyError, CoreError, LimitError
from ._histograms import (
    INTERVALS,
    Interval,
    Score,
    bucket_start,
    empty_histogram,
    histogram_size,
    merge,
    rollup,
    score,
)
from ._keys import KeyMaker, key_maker
from ._models import (
    BUILTIN_CHANNELS,
    CHANNEL_PATTERN,
    DAY_MS,
    DEFAULT_POLICY,
    FORM_PATTERN,
    HOUR_MS,
    LOCALE_PATTERN,
    MAX_COMMENT_CHARS,
    MAX_EVENTS_PER_REQUEST,
    MAX_FORM_CHARS,
    MAX_ID_CHARS,
    MAX_LOCALE_CHARS,
    MAX_NESTING,
    METRIC_RANGES,
    Batch,
    BucketKey,
    Event,
    Histograms,
    Policy,
    Record,
    Rejection,
)
from ._select import fallback_reason, pipeline

if TYPE_CHECKING:
    from ._pipeline_py import DedupWindow, aggregate, suspects, validate
else:
    DedupWindow = pipeline.DedupWindow
    aggregate = pipeline.aggregate
    suspects = pipeline.suspects
    validate = pipeline.validate

IMPLEMENTATION: str = pipeline.IMPLEMENTATION
FALLBACK_REASON: str | None = fallback_reason

__version__ = "0.3.0"

__all__ = [
    "BUILTIN_CHANNELS",
    "CHANNEL_PATTERN",
    "DAY_MS",
    "DEFAULT_POLICY",
    "FALLBACK_REASON",
    "FORM_PATTERN",
    "HOUR_MS",
    "IMPLEMENTATION",
    "KeyMaker",
    "INTERVALS",
    "LOCALE_PATTERN",
    "MAX_COMMENT_CHARS",
    "MAX_EVENTS_PER_REQUEST",
    "MAX_FORM_CHARS",
    "MAX_ID_CHARS",
    "MAX_LOCALE_CHARS",
    "MAX_NESTING",
    "METRIC_RANGES",
    "Batch",
    "BodyError",
    "BucketKey",
    "CoreError",
    "DedupWindow",
    "Event",
    "Histograms",
    "Interval",
    "LimitError",
    "Policy",
    "Record",
    "Rejection",
    "Score",
    "aggregate",
    "bucket_start",
    "decode_batch",
    "empty_histogram",
    "histogram_size",
    "key_maker",
    "merge",
    "rollup",
    "score",
    "suspects",
    "validate",
]
