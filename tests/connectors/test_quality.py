"""The quality scale: tiers measure the connector, given what its platform offers."""

from __future__ import annotations

from datetime import date

import pytest

from trickle.connectors.quality import (
    QUALITY_SCALE,
    RULES,
    TIER_ORDER,
    Capability,
    Legacy,
    Tier,
    assess,
    missing_rules,
    rules_for,
)

EVERYTHING = tuple(Capability)


def test_tiers_are_ordered_bronze_silver_gold() -> None:
    assert TIER_ORDER == (Tier.BRONZE, Tier.SILVER, Tier.GOLD)
    assert set(QUALITY_SCALE) == set(Tier)


def test_a_rule_belongs_to_one_tier_only() -> None:
    ids = [rule.id for rule in RULES]
    assert len(ids) == len(set(ids))


def test_bronze_requires_only_its_own_rules() -> None:
    assert rules_for(Tier.BRONZE) == QUALITY_SCALE[Tier.BRONZE]


def test_gold_requires_every_rule_of_the_scale_lowest_tier_first() -> None:
    assert rules_for(Tier.GOLD) == (
        *QUALITY_SCALE[Tier.BRONZE],
        *QUALITY_SCALE[Tier.SILVER],
        *QUALITY_SCALE[Tier.GOLD],
    )


@pytest.mark.parametrize("tier", list(Tier))
def test_declaring_every_rule_of_a_tier_on_a_platform_that_offers_everything_holds(
    tier: Tier,
) -> None:
    assessment = assess(tier, rules_for(tier), EVERYTHING)
    assert assessment.holds
    assert assessment.unmet == ()


def test_missing_rules_name_what_a_claim_lacks_in_the_scale_order() -> None:
    declared = [
        rule for rule in rules_for(Tier.SILVER) if rule not in ("typed-errors", "like-time")
    ]
    assert missing_rules(Tier.SILVER, declared) == ("typed-errors", "like-time")


def test_rules_beyond_the_tier_do_not_count_against_it() -> None:
    declared = (*rules_for(Tier.BRONZE), "conditional-requests")
    assert missing_rules(Tier.BRONZE, declared) == ()
    assert set(missing_rules(Tier.SILVER, declared)) == set(QUALITY_SCALE[Tier.SILVER])


def test_a_rule_about_what_the_platform_lacks_does_not_apply() -> None:
    """X says nothing of when a like was made and sends no ETags: a connector that does all
    it can with X reaches gold, where the old scale capped it at bronze."""
    x_offers = (Capability.EXPIRING_TOKENS, Capability.RATE_LIMIT_HEADERS)
    declared = [r for r in rules_for(Tier.GOLD) if r not in ("like-time", "conditional-requests")]

    assessment = assess(Tier.GOLD, declared, x_offers)

    assert assessment.holds
    assert dict(assessment.not_applicable) == {
        "like-time": Capability.LIKE_TIME,
        "conditional-requests": Capability.CONDITIONAL_REQUESTS,
    }


def test_a_platform_that_offers_something_holds_the_connector_to_using_it() -> None:
    declared = [r for r in rules_for(Tier.SILVER) if r != "like-time"]
    assert assess(Tier.SILVER, declared, EVERYTHING).unmet == ("like-time",)


def test_claiming_a_rule_about_a_capability_the_platform_lacks_is_a_problem() -> None:
    assessment = assess(Tier.BRONZE, (*rules_for(Tier.BRONZE), "like-time"), ())
    assert assessment.problems == ("'like-time' is claimed but the platform lacks 'like-time'",)
    assert not assessment.holds


def test_an_exemption_with_its_reason_waives_an_exemptible_rule() -> None:
    declared = [r for r in rules_for(Tier.GOLD) if r != "fake-platform"]
    reason = "instaloader's private endpoints change every few weeks"

    assessment = assess(Tier.GOLD, declared, EVERYTHING, {"fake-platform": reason})

    assert assessment.holds
    assert dict(assessment.exempt) == {"fake-platform": reason}


@pytest.mark.parametrize(
    ("exemptions", "problem"),
    [
        ({"typed-errors": "too hard"}, "'typed-errors' cannot be exempted"),
        ({"fake-platform": "  "}, "the exemption from 'fake-platform' gives no reason"),
        ({"made-up": "why not"}, "exemption for unknown rule 'made-up'"),
    ],
)
def test_exemptions_are_only_for_exemptible_rules_and_need_a_reason(
    exemptions: dict[str, str], problem: str
) -> None:
    assessment = assess(Tier.BRONZE, rules_for(Tier.BRONZE), EVERYTHING, exemptions)
    assert any(p.startswith(problem) for p in assessment.problems), assessment.problems
    assert not assessment.holds


def test_an_unknown_rule_is_a_problem() -> None:
    assessment = assess(Tier.BRONZE, (*rules_for(Tier.BRONZE), "made-up-rule"), EVERYTHING)
    assert assessment.problems == ("unknown rule 'made-up-rule'",)


def test_a_legacy_platform_says_when_its_api_closed_and_what_is_left() -> None:
    closed = Legacy(date(2018, 6, 15), "point base_url at a server that still speaks v1")
    assert closed.summary() == "legacy: its API closed on 2018-06-15"
    assert closed.warning("500px") == (
        "500px's public API closed on 2018-06-15: point base_url at a server that still speaks v1"
    )
    assert Legacy(date(2017, 3, 15)).warning("App.net") == (
        "App.net's public API closed on 2017-03-15"
    )
