"""The connector quality scale: which checkable rules each tier requires.

Modelled on Home Assistant's integration quality scale. Every connector
declares a ``tier`` and the ``quality_rules`` it meets; ``docs/connectors.md``
describes each rule; the contract suite fails a connector whose declared
rules do not back its tier, and ``trickle connectors list`` shows the tier.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from trickle.connectors.base import Tier

QUALITY_SCALE: Mapping[Tier, tuple[str, ...]] = {
    Tier.BRONZE: (
        "links-with-token",
        "identifies-account",
        "polls-incrementally",
        "typed-errors",
        "secrets-redacted",
        "contract-suite",
    ),
    Tier.SILVER: (
        "honours-rate-limits",
        "like-time",
        "fixtures-from-reference",
    ),
    Tier.GOLD: (
        "conditional-requests",
        "fake-platform",
    ),
}
"""The rules each tier adds, by id. A tier requires its own rules and those of every lower tier."""

TIER_ORDER = (Tier.BRONZE, Tier.SILVER, Tier.GOLD)


def rules_for(tier: Tier) -> tuple[str, ...]:
    """Every rule a connector claiming ``tier`` must meet (its tier's and the lower tiers')."""
    rules: list[str] = []
    for step in TIER_ORDER[: TIER_ORDER.index(tier) + 1]:
        rules.extend(QUALITY_SCALE[step])
    return tuple(rules)


def missing_rules(tier: Tier, declared: Iterable[str]) -> tuple[str, ...]:
    """The rules ``tier`` requires that ``declared`` lacks (empty when the claim holds)."""
    have = set(declared)
    return tuple(rule for rule in rules_for(tier) if rule not in have)
