"""The contract suite checks itself: it passes an honest connector, and fails each connector
broken on purpose in the tests that name its bug.

The suite is a pytest base class: what it does depends on collection (the
subclass's fixtures, parametrization, skips), so it is run here as a plugin
author's test run runs it, with ``pytester``, in this process (no interpreter
to start per run). The connectors and their platform, Ripple, are in
``ripple_platform.py`` beside this module. Each case below is a spec: the
exact tests a bug fails, and what the main one says. That GitHub and Pebble
pass is shown where they run the suite, ``tests/connectors/github/test_contract.py``
and ``examples/trickle-connector-example/tests/test_pebble_contract.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

pytest_plugins = ("pytester",)

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class SuiteRun:
    """What one run of the suite reported, by test name (with its parameters)."""

    passed: frozenset[str]
    skipped: dict[str, str]
    """Skipped test -> the reason it gives."""
    failed: dict[str, str]
    """Failed test -> its failure report."""


def run_suite(pytester: pytest.Pytester, body: str) -> SuiteRun:
    """Run the contract suite as the test class ``body`` declares it (Ripple's names in
    scope)."""
    pytester.syspathinsert(HERE)
    pytester.makepyfile(
        test_subject=(
            "from ripple_platform import *  # noqa: F403\n"
            "from trickle.testing.contract import ContractPlatform\n\n\n" + body
        )
    )
    recorder = pytester.inline_run("-p", "no:cacheprovider", "-q")
    passed: set[str] = set()
    skipped: dict[str, str] = {}
    failed: dict[str, str] = {}
    for report in recorder.getreports("pytest_runtest_logreport"):
        name = report.nodeid.rpartition("::")[2]
        if report.failed:
            failed[name] = report.longreprtext
        elif report.skipped:
            where = report.longrepr
            said = where[2] if isinstance(where, tuple) else str(where)
            skipped[name] = said.removeprefix("Skipped: ")
        elif report.when == "call":
            passed.add(name)
    assert recorder.getreports("pytest_collectreport")[-1].passed, "the subject did not collect"
    return SuiteRun(frozenset(passed - set(failed)), skipped, failed)


def subject(connector: str) -> str:
    """The test class that runs the suite against ``connector`` on Ripple."""
    return f"class TestSubject(RippleContract):\n    connector_class = {connector}\n"


def test_the_honest_connector_passes_every_test_and_skips_none(pytester: pytest.Pytester) -> None:
    run = run_suite(pytester, subject("RippleConnector"))
    assert run.failed == {}
    assert run.skipped == {}  # every capability-gated check applies to Ripple, and runs
    assert {
        "test_server_errors_raise_transient_error[poll]",
        "test_an_error_inside_a_successful_answer_is_a_typed_error[identify]",
        "test_rate_limits_are_read_from_successful_answers",
        "test_expired_credentials_are_renewed_saved_then_used[expiry-known]",
        "test_expired_credentials_are_renewed_saved_then_used[expiry-unknown]",
        "test_a_refused_refresh_raises_auth_expired[poll]",
    } <= run.passed
    assert len(run.passed) == 31


@dataclass(frozen=True)
class Bug:
    """A broken connector, the tests it must fail (no more, no fewer), and what the first of
    them, the one about its bug, must say."""

    connector: str
    fails: tuple[str, ...]
    says: str


def fails(*names: str) -> tuple[str, ...]:
    """Test names, the one about the bug first."""
    return names


MALFORMED_AND_UNREADABLE = fails(
    *(
        f"test_malformed_payloads_raise_platform_error[{kind}-{call}]"
        for kind in ("missing-field", "wrong-type")
        for call in ("identify", "poll")
    ),
    *(
        f"test_unreadable_answers_raise_platform_error[{kind}-{call}]"
        for kind in ("html-error-page", "truncated-json")
        for call in ("identify", "poll")
    ),
)

BUGS = [
    Bug(
        "ComparesIds",
        fails(
            "test_paging_stops_at_known_items_not_at_an_id_comparison",
            "test_incremental_poll_returns_only_new_likes",
            "test_paging_stops_after_max_pages",
            "test_state_survives_the_json_round_trip",
        ),
        "use the known-item set, not an id comparison",
    ),
    Bug(
        "PagesPastKnown",
        fails(
            # no likes, rightly, but from three requests: only the request count shows it
            "test_far_future_cursor_returns_nothing",
            "test_paging_stops_at_known_items_not_at_an_id_comparison",
            "test_incremental_poll_returns_only_new_likes",
            "test_unchanged_platform_returns_nothing",
            "test_state_survives_the_json_round_trip",
        ),
        "a poll from a far-future cursor: expected 1 request(s) to the platform, saw 3",
    ),
    Bug(
        "LeaksToken",
        MALFORMED_AND_UNREADABLE,
        "a credential appears in the message of PlatformError",
    ),
    Bug(
        "Generic401",
        fails(
            "test_revoked_credentials_raise_auth_expired_on_poll",
            "test_revoked_credentials_raise_auth_expired_on_identify",
            "test_a_refused_refresh_raises_auth_expired[identify]",
            "test_a_refused_refresh_raises_auth_expired[poll]",
            "test_an_error_inside_a_successful_answer_is_a_typed_error[identify]",
            "test_an_error_inside_a_successful_answer_is_a_typed_error[poll]",
        ),
        "poll with revoked credentials raised PlatformError",
    ),
    Bug(
        "KeepsOldRefreshToken",
        fails(
            "test_expired_credentials_are_renewed_saved_then_used[expiry-known]",
            "test_expired_credentials_are_renewed_saved_then_used[expiry-unknown]",
        ),
        "the platform rotated the refresh token, but another one was saved",
    ),
    Bug(
        "OwnSession",
        fails(
            "test_expired_credentials_are_renewed_saved_then_used[expiry-known]",
            "test_expired_credentials_are_renewed_saved_then_used[expiry-unknown]",
            "test_rate_limits_are_read_from_successful_answers",
            # every poll the suite checks sends its requests past the account's session
            "test_baseline_poll_returns_the_first_page_only",
            "test_baseline_poll_of_an_account_without_likes",
            "test_baseline_poll_reports_like_times",
            "test_incremental_poll_returns_only_new_likes",
            "test_paging_stops_at_known_items_not_at_an_id_comparison",
            "test_paging_stops_after_max_pages",
            "test_far_future_cursor_returns_nothing",
            "test_unchanged_platform_returns_nothing",
            "test_state_survives_the_json_round_trip",
            "test_revoked_credentials_raise_auth_expired_on_poll",
        ),
        "0 through the account's session",
    ),
    Bug(
        "SwallowsOutages",
        fails("test_server_errors_raise_transient_error[poll]"),
        "poll answered 503 raised nothing (expected TransientError)",
    ),
    Bug(
        "MisreadsBodyErrors",
        fails(
            "test_an_error_inside_a_successful_answer_is_a_typed_error[poll]",
            "test_an_error_inside_a_successful_answer_is_a_typed_error[identify]",
        ),
        "raised KeyError",
    ),
]


@pytest.mark.parametrize("bug", BUGS, ids=[bug.connector for bug in BUGS])
def test_a_broken_connector_fails_the_tests_that_name_its_bug(
    pytester: pytest.Pytester, bug: Bug
) -> None:
    run = run_suite(pytester, subject(bug.connector))
    assert set(run.failed) == set(bug.fails)
    assert run.skipped == {}
    assert bug.says in run.failed[bug.fails[0]]


def test_a_claim_the_adapter_cannot_stage_fails_rather_than_skips(
    pytester: pytest.Pytester,
) -> None:
    """refreshes-credentials claimed, but the adapter cannot expire a token: the suite cannot
    check the claim, and says so by failing."""
    run = run_suite(
        pytester,
        "class CannotExpire(RippleContractPlatform):\n"
        "    expire_access_token = ContractPlatform.expire_access_token\n\n\n"
        "class TestSubject(RippleContract):\n"
        "    connector_class = RippleConnector\n\n"
        "    @pytest.fixture\n"
        "    def platform(self):\n"
        "        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:\n"
        "            ripple = Ripple()\n"
        "            ripple.install(mock)\n"
        "            yield CannotExpire(ripple)\n",
    )
    assert set(run.failed) == {
        "test_expired_credentials_are_renewed_saved_then_used[expiry-known]",
        "test_expired_credentials_are_renewed_saved_then_used[expiry-unknown]",
        "test_a_refused_refresh_raises_auth_expired[identify]",
        "test_a_refused_refresh_raises_auth_expired[poll]",
    }
    for report in run.failed.values():
        assert "CannotExpire must implement expire_access_token()" in report


def test_checks_about_a_capability_the_platform_lacks_are_skipped_saying_so(
    pytester: pytest.Pytester,
) -> None:
    """Ripple without rate-limit headers, expiring tokens and errors inside a 200 (and so
    without the rules about them): those checks skip, each with its reason."""
    run = run_suite(
        pytester,
        "class Plain(RippleConnector):\n"
        "    capabilities = frozenset({Capability.LIKE_TIME})\n"
        "    quality_rules = tuple(\n"
        "        r for r in RippleConnector.quality_rules\n"
        '        if r not in ("reads-rate-limits", "refreshes-credentials")\n'
        "    )\n"
        "    error_policy = DEFAULT_POLICY\n\n\n" + subject("Plain"),
    )
    assert run.failed == {}
    assert run.skipped == {
        "test_rate_limits_are_read_from_successful_answers": (
            "reads-rate-limits does not apply: the platform lacks 'rate-limit-headers'"
        ),
        **{
            f"test_expired_credentials_are_renewed_saved_then_used[{expiry}]": (
                "refreshes-credentials does not apply: the platform lacks 'expiring-tokens'"
            )
            for expiry in ("expiry-known", "expiry-unknown")
        },
        **{
            f"test_a_refused_refresh_raises_auth_expired[{call}]": (
                "refreshes-credentials does not apply: the platform lacks 'expiring-tokens'"
            )
            for call in ("identify", "poll")
        },
        **{
            f"test_an_error_inside_a_successful_answer_is_a_typed_error[{call}]": (
                "the connector's error policy reads no errors inside a 200 (no error_in_body)"
            )
            for call in ("identify", "poll")
        },
    }
