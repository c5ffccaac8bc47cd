"""The quality scale: each tier requires its own rules and every lower tier's."""

from __future__ import annotations

import pytest

from trickle.connectors.base import Tier
from trickle.connectors.quality import QUALITY_SCALE, TIER_ORDER, missing_rules, rules_for


def test_tiers_are_ordered_bronze_silver_gold() -> None:
    assert TIER_ORDER == (Tier.BRONZE, Tier.SILVER, Tier.GOLD)
    assert set(QUALITY_SCALE) == set(Tier)


def test_a_rule_belongs_to_one_tier_only() -> None:
    rules = [rule for tier in TIER_ORDER for rule in QUALITY_SCALE[tier]]
    assert len(rules) == len(set(rules))


def test_bronze_requires_only_its_own_rules() -> None:
    assert rules_for(Tier.BRONZE) == QUALITY_SCALE[Tier.BRONZE]


def test_gold_requires_every_rule_of_the_scale_lowest_tier_first() -> None:
    assert rules_for(Tier.GOLD) == (
        *QUALITY_SCALE[Tier.BRONZE],
        *QUALITY_SCALE[Tier.SILVER],
        *QUALITY_SCALE[Tier.GOLD],
    )


@pytest.mark.parametrize("tier", list(Tier))
def test_declaring_every_rule_of_a_tier_leaves_nothing_missing(tier: Tier) -> None:
    assert missing_rules(tier, rules_for(tier)) == ()


def test_missing_rules_name_what_a_claim_lacks_in_the_scale_order() -> None:
    declared = [
        rule for rule in rules_for(Tier.SILVER) if rule not in ("typed-errors", "like-time")
    ]
    assert missing_rules(Tier.SILVER, declared) == ("typed-errors", "like-time")


def test_rules_beyond_the_tier_do_not_count_against_it() -> None:
    declared = (*rules_for(Tier.BRONZE), "conditional-requests", "made-up-rule")
    assert missing_rules(Tier.BRONZE, declared) == ()
    assert missing_rules(Tier.SILVER, declared) == QUALITY_SCALE[Tier.SILVER]
