"""Rules: what check_rule refuses (a rule that can never match, naming the field), what a rule
matches on every metric (the default detractor rule included), which rule an item follows, and
which rules a scoped person may see. Plain values: no database."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from voxloop_core import METRIC_RANGES
from voxloop_gateway.errors import ApiError
from voxloop_gateway.followups.rules import (
    DEFAULT_SLA_HOURS,
    LOW_SCORES,
    Rule,
    RuleFields,
    check_rule,
    covers,
    default_rule,
    first_match,
    matches,
)

from .conftest import NOW_MS, SHOP_CHANNELS, response


def fields(**given: Any) -> RuleFields:
    return msgspec.convert({"name": "r", **given}, RuleFields)


def rule(rule_id: str = "rule_a", created_ms: int = NOW_MS, **given: Any) -> Rule:
    checked = check_rule(fields(**given), SHOP_CHANNELS)
    return Rule(
        **msgspec.structs.asdict(checked), id=rule_id, project="shop", created_ms=created_ms
    )


NEVER_MATCH = [
    ("empty-channels", {"channels": []}, "channels", "empty list"),
    ("unknown-channel", {"channels": ["web", "fax"]}, "channels", "'fax'"),
    ("empty-forms", {"forms": []}, "forms", "empty list"),
    ("bad-form", {"forms": ["a b"]}, "forms", "'a b'"),
    ("empty-metrics", {"metrics": []}, "metrics", "empty list"),
    ("unknown-metric", {"metrics": ["sus"]}, "metrics", "'sus'"),
    ("inverted-range", {"score_min": 5, "score_max": 2}, "score_max", "at least score_min"),
    ("above-every-scale", {"score_min": 11}, "score_min", "outside every chosen metric"),
    ("below-every-scale", {"score_max": -1}, "score_max", "outside every chosen metric"),
    ("outside-the-metric", {"metrics": ["csat"], "score_min": 6}, "score_min", "csat 1..5"),
    (
        "outside-both-metrics",
        {"metrics": ["thumbs", "csat"], "score_min": 7},
        "score_min",
        "thumbs 0..1, csat 1..5",
    ),
    ("low-above-range", {"metrics": ["nps"], "low": True, "score_min": 7}, "low", "nps 0..6"),
    ("empty-words", {"words": []}, "words", "empty list"),
    ("blank-word", {"words": ["refund", "  "]}, "words", "1-64"),
    ("words-without-comment", {"words": ["refund"], "has_comment": False}, "words", "without"),
    ("no-sla", {"sla_hours": 0}, "sla_hours", "1..8784"),
    ("blank-name", {"name": "  "}, "name", "1-100"),
    ("bad-escalation", {"escalate_to": "nobody"}, "escalate_to", "email address"),
]


@pytest.mark.parametrize(
    ("given", "field", "said"),
    [case[1:] for case in NEVER_MATCH],
    ids=[case[0] for case in NEVER_MATCH],
)
def test_a_rule_that_can_never_match_is_refused_naming_the_field(
    given: dict[str, Any], field: str, said: str
) -> None:
    with pytest.raises(ApiError) as refused:
        check_rule(fields(**given), SHOP_CHANNELS)
    assert refused.value.status == 422
    assert refused.value.message.startswith(field), refused.value.message
    assert said in refused.value.message


def test_a_rule_is_kept_normalised() -> None:
    kept = check_rule(
        fields(
            name=" Refunds ",
            channels=["web", "web", "app"],
            words=["Refund", "REFUND", " Remboursé "],
            escalate_to=" Lead@Example.COM ",
            metrics=["csat"],
            score_max=3,
        ),
        SHOP_CHANNELS,
    )
    assert kept.name == "Refunds"
    assert kept.channels == ("web", "app")
    assert kept.words == ("refund", "remboursé")
    assert kept.escalate_to == "lead@example.com"
    assert check_rule(fields(escalate_to="0123456789abcdef"), SHOP_CHANNELS).escalate_to == (
        "0123456789abcdef"
    )


def test_low_scores_cover_every_metric_within_its_scale() -> None:
    assert set(LOW_SCORES) == set(METRIC_RANGES)
    for metric, (low, high) in LOW_SCORES.items():
        first, last = METRIC_RANGES[metric]
        assert first == low <= high < last, metric


# Every score of every metric, with and without a comment, against the default rule.
DETRACTORS = {"nps": 6, "csat": 2, "ces": 2, "likert": 2, "thumbs": 0}


@pytest.mark.parametrize("metric", list(METRIC_RANGES))
def test_the_default_rule_matches_low_scores_with_a_comment(metric: str) -> None:
    detractors = default_rule("shop", NOW_MS)
    assert detractors.sla_hours == DEFAULT_SLA_HOURS == 48
    first, last = METRIC_RANGES[metric]
    for score in range(first, last + 1):
        low = score <= DETRACTORS[metric]
        said = response(metric=metric, score=score, comment="Not good")
        assert matches(detractors, said) is low, (metric, score)
        for silent in (None, "", "   "):
            assert not matches(detractors, response(metric=metric, score=score, comment=silent))


def test_nps_csat_and_ces_thresholds_of_the_issue() -> None:
    detractors = default_rule("shop", NOW_MS)
    cases = [("nps", 6, True), ("nps", 7, False), ("csat", 2, True), ("csat", 3, False)]
    cases += [("ces", 2, True), ("ces", 3, False), ("thumbs", 0, True), ("thumbs", 1, False)]
    for metric, score, wanted in cases:
        assert matches(detractors, response(metric=metric, score=score)) is wanted


def test_each_narrowing_must_hold() -> None:
    narrow = rule(channels=["app"], forms=["checkout"], metrics=["csat"], score_min=1, score_max=3)
    fits = response(channel="app", metric="csat", score=3)
    assert matches(narrow, fits)
    for other in [
        {"channel": "web"},
        {"form": "search"},
        {"metric": "ces"},
        {"score": 4},
    ]:
        assert not matches(narrow, msgspec.structs.replace(fits, **other)), other
    assert not matches(msgspec.structs.replace(narrow, enabled=False), fits)


def test_comment_conditions() -> None:
    with_comment = rule(has_comment=True)
    without = rule(has_comment=False)
    assert matches(with_comment, response(comment="Late"))
    assert not matches(with_comment, response(comment="  "))
    assert matches(without, response(comment=None))
    assert not matches(without, response(comment="Late"))
    words = rule(words=["REFUND", "rückerstattung", "返金"])
    assert matches(words, response(comment="I want my Refunds back"))
    assert matches(words, response(comment="Wo ist die RÜCKERSTATTUNG?"))
    assert matches(words, response(comment="返金してください"))
    assert not matches(words, response(comment="Great service"))
    assert not matches(words, response(comment=None))


def test_an_item_follows_the_most_urgent_matching_rule() -> None:
    slow = rule("rule_slow", created_ms=NOW_MS - 10, sla_hours=72)
    fast = rule("rule_fast", created_ms=NOW_MS, sla_hours=4, metrics=["nps"])
    other = rule("rule_other", created_ms=NOW_MS - 20, sla_hours=1, metrics=["csat"])
    assert first_match([slow, fast, other], response()) == fast
    assert first_match([slow, other], response()) == slow
    twin = rule("rule_twin", created_ms=NOW_MS - 30, sla_hours=72)
    assert first_match([slow, twin], response()) == twin  # the oldest of equals
    assert first_match([other], response()) is None


def test_a_scoped_person_sees_only_rules_within_their_scope() -> None:
    app_only = {"app": None}
    app_checkout = {"app": frozenset({"checkout"})}
    everything = {c: None for c in SHOP_CHANNELS}
    anywhere = fields()
    on_app = fields(channels=["app"])
    on_app_checkout = fields(channels=["app"], forms=["checkout"])
    assert covers(everything, SHOP_CHANNELS, anywhere)
    assert not covers(app_only, SHOP_CHANNELS, anywhere)
    assert covers(app_only, SHOP_CHANNELS, on_app)
    assert not covers(app_checkout, SHOP_CHANNELS, on_app)
    assert covers(app_checkout, SHOP_CHANNELS, on_app_checkout)
    assert not covers(app_only, SHOP_CHANNELS, fields(channels=["app", "web"]))
