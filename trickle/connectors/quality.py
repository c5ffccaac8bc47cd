"""The connector quality scale: what a tier promises, measured on the connector, not the platform.

Modelled on Home Assistant's integration quality scale. Every connector
declares a ``tier``, the ``quality_rules`` it meets, the ``capabilities`` of
its platform (what the platform offers: like times, conditional requests,
expiring tokens...), and ``exemptions`` (a rule it cannot meet, with the
reason). A rule that uses a capability the platform lacks does not apply to
that connector (X says nothing of when a like was made, so an X connector is
not marked down for ``like-time``): a tier measures what the connector does
with what its platform gives it. ``docs/connectors.md`` describes each rule;
the contract suite fails a connector whose declarations do not back its tier,
and ``trickle connectors list`` shows the tier and what does not apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class Tier(StrEnum):
    """Connector quality tiers (after Home Assistant's integration quality scale)."""

    BRONZE = "bronze"
    SILVER = "silver"
    GOLD = "gold"


TIER_ORDER = (Tier.BRONZE, Tier.SILVER, Tier.GOLD)


class Capability(StrEnum):
    """Something a platform offers (or not), whatever a connector does."""

    LIKE_TIME = "like-time"
    """Each like comes with the time it was made (GitHub's ``starred_at``)."""
    CONDITIONAL_REQUESTS = "conditional-requests"
    """Answers carry validators (an ETag) and an unchanged list is answered "not modified"."""
    EXPIRING_TOKENS = "expiring-tokens"
    """Access tokens expire and are renewed with a refresh token (X, SoundCloud)."""
    RATE_LIMIT_HEADERS = "rate-limit-headers"
    """Every answer says how much of the rate limit is left (``x-ratelimit-remaining``)."""


@dataclass(frozen=True)
class Legacy:
    """A platform whose public API has closed (``closed_on``): the connector speaks the last
    documented API, for servers that still speak it, and says so wherever it is listed or
    linked. ``note`` says what is left (``"set base_url to a server that still speaks v1"``).
    A tier still measures the connector; ``Legacy`` tells the operator the platform is gone."""

    closed_on: date
    note: str = ""

    def summary(self) -> str:
        """A few words for ``trickle connectors list``."""
        return f"legacy: its API closed on {self.closed_on.isoformat()}"

    def warning(self, display_name: str) -> str:
        """What ``trickle link`` tells the operator before linking an account."""
        said = f": {self.note}" if self.note else ""
        return f"{display_name}'s public API closed on {self.closed_on.isoformat()}{said}"


@dataclass(frozen=True)
class Rule:
    """One checkable rule of the scale.

    ``uses`` names the platform capability the rule is about: without it the rule does not
    apply. ``exemptible`` rules may be waived with a reason; the others never.
    """

    id: str
    tier: Tier
    uses: Capability | None = None
    exemptible: bool = False


RULES: tuple[Rule, ...] = (
    Rule("links-with-token", Tier.BRONZE, exemptible=True),
    Rule("identifies-account", Tier.BRONZE),
    Rule("polls-incrementally", Tier.BRONZE),
    Rule("typed-errors", Tier.BRONZE),
    Rule("secrets-redacted", Tier.BRONZE),
    Rule("contract-suite", Tier.BRONZE),
    Rule("honours-rate-limits", Tier.SILVER),
    Rule("reads-rate-limits", Tier.SILVER, uses=Capability.RATE_LIMIT_HEADERS),
    Rule("like-time", Tier.SILVER, uses=Capability.LIKE_TIME),
    Rule("refreshes-credentials", Tier.SILVER, uses=Capability.EXPIRING_TOKENS),
    Rule("fixtures-from-reference", Tier.SILVER, exemptible=True),
    Rule("conditional-requests", Tier.GOLD, uses=Capability.CONDITIONAL_REQUESTS),
    Rule("fake-platform", Tier.GOLD, exemptible=True),
)
"""Every rule, lowest tier first; ``docs/connectors.md`` says what each one asks."""

RULES_BY_ID: Mapping[str, Rule] = {rule.id: rule for rule in RULES}

QUALITY_SCALE: Mapping[Tier, tuple[str, ...]] = {
    tier: tuple(rule.id for rule in RULES if rule.tier is tier) for tier in TIER_ORDER
}
"""The rules each tier adds, by id. A tier requires its own rules and those of every lower tier."""


def rules_for(tier: Tier) -> tuple[str, ...]:
    """Every rule a connector claiming ``tier`` must meet (its tier's and the lower tiers')."""
    rank = TIER_ORDER.index(tier)
    return tuple(rule.id for rule in RULES if TIER_ORDER.index(rule.tier) <= rank)


@dataclass(frozen=True)
class Assessment:
    """How a connector's declarations measure up to the tier it claims."""

    tier: Tier
    unmet: tuple[str, ...]
    """Rules the tier requires that the connector neither meets nor may skip."""
    not_applicable: Mapping[str, Capability]
    """Required rules about a capability the platform lacks, and that capability."""
    exempt: Mapping[str, str]
    """Required rules the connector is exempt from, with the reason."""
    problems: tuple[str, ...]
    """Declarations that cannot stand: unknown rules, exemptions that are not allowed or
    give no reason, a rule claimed for a capability the platform lacks."""

    @property
    def holds(self) -> bool:
        """True when the tier is backed and nothing declared is wrong."""
        return not self.unmet and not self.problems


def assess(
    tier: Tier,
    rules: Iterable[str],
    capabilities: Iterable[Capability] = (),
    exemptions: Mapping[str, str] | None = None,
) -> Assessment:
    """Check a connector's tier against the rules it declares, its platform's capabilities and
    its exemptions."""
    declared = set(rules)
    offered = set(capabilities)
    waived = dict(exemptions or {})
    problems = [f"unknown rule {rule!r}" for rule in sorted(declared - set(RULES_BY_ID))]
    for rule_id, reason in sorted(waived.items()):
        rule = RULES_BY_ID.get(rule_id)
        if rule is None:
            problems.append(f"exemption for unknown rule {rule_id!r}")
        elif not rule.exemptible:
            problems.append(f"{rule_id!r} cannot be exempted: every connector must meet it")
        elif not str(reason).strip():
            problems.append(f"the exemption from {rule_id!r} gives no reason")
    for rule_id in sorted(declared & set(RULES_BY_ID)):
        uses = RULES_BY_ID[rule_id].uses
        if uses is not None and uses not in offered:
            problems.append(f"{rule_id!r} is claimed but the platform lacks {uses.value!r}")
    unmet: list[str] = []
    not_applicable: dict[str, Capability] = {}
    exempt: dict[str, str] = {}
    for rule_id in rules_for(tier):
        rule = RULES_BY_ID[rule_id]
        if rule_id in declared:
            continue
        if rule.uses is not None and rule.uses not in offered:
            not_applicable[rule_id] = rule.uses
        elif rule.exemptible and str(waived.get(rule_id, "")).strip():
            exempt[rule_id] = waived[rule_id]
        else:
            unmet.append(rule_id)
    return Assessment(tier, tuple(unmet), not_applicable, exempt, tuple(problems))


def missing_rules(
    tier: Tier,
    declared: Iterable[str],
    capabilities: Iterable[Capability] = tuple(Capability),
    exemptions: Mapping[str, str] | None = None,
) -> tuple[str, ...]:
    """The rules ``tier`` requires that ``declared`` lacks (empty when the claim holds); by
    default as for a platform that offers everything."""
    return assess(tier, declared, capabilities, exemptions).unmet
