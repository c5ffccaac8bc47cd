"""Money as integer minor units, exact parsing, and the exact equal split.

Floats never hold money in trickle. An amount is a count of the currency's
minor units (cents for EUR) plus its ISO 4217 code; parsing rejects anything
that cannot be represented exactly, and splitting a sum over n flattrs gives
every flattr ``total // n`` and ``total % n`` of them one unit more, chosen by
a deterministic hash rather than by list position.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from trickle.core.errors import TrickleError

# ISO 4217 minor-unit exponents for the currencies an operator is likely to
# use. Anything else is rejected rather than guessed.
CURRENCY_EXPONENTS: dict[str, int] = {
    "AUD": 2, "BGN": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CLP": 0,
    "CNY": 2, "CZK": 2, "DKK": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2,
    "IDR": 2, "ILS": 2, "INR": 2, "ISK": 0, "JOD": 3, "JPY": 0, "KRW": 0,
    "KWD": 3, "MXN": 2, "NOK": 2, "NZD": 2, "OMR": 3, "PLN": 2, "RON": 2,
    "SEK": 2, "SGD": 2, "THB": 2, "TND": 3, "TRY": 2, "TWD": 2, "UAH": 2,
    "USD": 2, "VND": 0, "ZAR": 2,
}  # fmt: skip


class MoneyError(TrickleError, ValueError):
    """An amount or currency that cannot be represented exactly."""


# The largest amounts trickle accepts, in minor units of any currency (the figures in
# parentheses are for a currency with cents, like EUR). They keep every amount and every
# sum trickle computes far inside the 64-bit integers both databases store money in
# (2**63 - 1 is about 9.2 * 10**18), and are checked where amounts come in (parsing,
# budgets, deposits) and again by the ledger and the database.
MAX_BUDGET_MINOR = 10**9
"""A monthly budget: at most 10,000,000.00."""
MAX_DEPOSIT_MINOR = 10**11
"""One deposit: at most 1,000,000,000.00."""
MAX_BALANCE_MINOR = 10**14
"""All the money trickle holds in one currency, every wallet and the fees together: at most
1,000,000,000,000.00. Money only enters through deposits, so capping their total caps every
balance, share and transfer too; the database refuses a single entry beyond it."""
_MAX_DIGITS = 30  # longer numbers are refused before Python turns them into an int


def exponent(currency: str) -> int:
    """Number of decimal places of ``currency``'s minor unit (EUR: 2, JPY: 0)."""
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        known = ", ".join(sorted(CURRENCY_EXPONENTS))
        raise MoneyError(f"unknown currency {_shown(currency)} (known: {known})") from None


def normalize_currency(code: str) -> str:
    """Upper-case and validate an ISO 4217 code."""
    code = code.strip().upper()
    exponent(code)
    return code


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: ``minor`` units of ``currency`` (499 EUR-cents = 4.99 EUR)."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.minor, int) or isinstance(self.minor, bool):
            raise MoneyError(f"money must be an integer count of minor units, got {self.minor!r}")
        exponent(self.currency)

    def __str__(self) -> str:
        return format_money(self.minor, self.currency)

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor - other.minor, self.currency)

    def _same_currency(self, other: Money) -> None:
        if self.currency != other.currency:
            raise MoneyError(f"cannot mix {self.currency} and {other.currency}")


_AMOUNT = re.compile(
    r"""^\s*(?:(?P<cur1>[A-Za-z]{3})\s+)?
        (?P<sign>[-+])?(?P<int>[0-9]+)(?:\.(?P<frac>[0-9]*))?
        (?:\s*(?P<cur2>[A-Za-z]{3}))?\s*$""",
    re.VERBOSE,
)


def parse_money(
    text: str,
    default_currency: str,
    *,
    allow_negative: bool = False,
    maximum: int | None = None,
    what: str = "amount",
) -> Money:
    """Parse ``5``, ``5.00``, ``4.99 EUR`` or ``EUR 4.99`` exactly.

    Raises :class:`MoneyError` with a message a user can act on when the text
    is not an amount, names an unknown currency, has more decimals than the
    currency allows, is negative where that is not allowed, or is more than
    ``maximum`` minor units (``what`` names the amount in that message).
    """
    if len(text) > 200:
        raise MoneyError(f"{_shown(text)} is too large for {what_article(what)}")
    match = _AMOUNT.match(text)
    if match is None:
        raise MoneyError(f"not an amount: {_shown(text)} (write it like 5, 5.00 or 4.99 EUR)")
    if len(match["int"]) > _MAX_DIGITS or len(match["frac"] or "") > _MAX_DIGITS:
        raise MoneyError(f"{_shown(text)} is too large for {what_article(what)}")
    if match["cur1"] and match["cur2"]:
        raise MoneyError(f"not an amount: {text!r} (give the currency once)")
    currency = normalize_currency(match["cur1"] or match["cur2"] or default_currency)
    places = exponent(currency)
    frac = match["frac"] or ""
    if len(frac.rstrip("0")) > places:
        raise MoneyError(f"{_shown(text)} has more decimals than {currency} allows ({places})")
    frac = frac[:places].ljust(places, "0")
    minor = int(match["int"]) * 10**places + (int(frac) if frac else 0)
    if match["sign"] == "-":
        minor = -minor
    if minor < 0 and not allow_negative:
        raise MoneyError(f"{what} must not be negative: {_shown(text)}")
    if maximum is not None:
        check_at_most(minor, maximum, currency, what)
    return Money(minor, currency)


def _shown(text: str) -> str:
    """The user's text in an error message: quoted, and cut short if it is long."""
    text = text.strip()
    return repr(text if len(text) <= 40 else text[:39] + "…")


def what_article(what: str) -> str:
    """``"a budget"``, ``"an amount"``: ``what`` with its indefinite article."""
    return f"{'an' if what[:1] in 'aeiou' else 'a'} {what}"


def check_at_most(minor: int, maximum: int, currency: str, what: str) -> None:
    """Refuse an amount above ``maximum`` minor units, saying what the maximum is."""
    if minor > maximum:
        raise MoneyError(
            f"{format_money(minor, currency)} is more than {what_article(what)} may be "
            f"(at most {format_money(maximum, currency)})"
        )


def format_money(minor: int, currency: str) -> str:
    """Render minor units as ``4.99 EUR`` (``-0.05 EUR``, ``500 JPY``)."""
    places = exponent(currency)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**places)
    if places == 0:
        return f"{sign}{whole} {currency}"
    return f"{sign}{whole}.{frac:0{places}d} {currency}"


def fee_of(spend: int, fee_bps: int) -> int:
    """The operator's fee on ``spend``: floor(spend * fee_bps / 10000)."""
    if not 0 <= fee_bps <= 10_000:
        raise MoneyError(f"fee_bps must be between 0 and 10000, got {fee_bps}")
    return spend * fee_bps // 10_000


# The leftover rule. Every counted flattr gets a rank key mixed from
# (month, user, flattr id); the `total % n` flattrs with the smallest keys get
# one more unit. The mix is integer arithmetic modulo a Mersenne prime and a
# final squaring (non-linear, so neighbouring ids do not keep their order),
# chosen so that SQLite and PostgreSQL compute exactly the same keys in SQL
# with 64-bit integers: every intermediate product stays below 2**62.
SPLIT_PRIME = 2_147_483_647  # 2**31 - 1
SPLIT_MUL_FLATTR = 1_103_515_245
SPLIT_MUL_USER = 1_664_525
SPLIT_MUL_PERIOD = 22_695_477


def split_rank_key(period_index: int, user_id: int, flattr_id: int) -> int:
    """The hash that decides which flattrs of a user's month get a leftover unit."""
    p = SPLIT_PRIME
    mixed = (
        (flattr_id % p) * SPLIT_MUL_FLATTR % p
        + (user_id % p) * SPLIT_MUL_USER % p
        + (period_index % p) * SPLIT_MUL_PERIOD % p
    ) % p
    return mixed * mixed % p


def split_evenly(total: int, rank_keys: Sequence[int]) -> list[int]:
    """Split ``total`` minor units exactly over ``len(rank_keys)`` shares.

    Each share is ``total // n``; the ``total % n`` shares whose rank keys are
    smallest (ties broken by position) get one unit more. The result is in
    the order of ``rank_keys`` and always sums to ``total``.
    """
    n = len(rank_keys)
    if n == 0:
        raise MoneyError("cannot split over zero shares")
    if total < 0:
        raise MoneyError(f"cannot split a negative amount ({total})")
    base, leftover = divmod(total, n)
    order = sorted(range(n), key=lambda i: (rank_keys[i], i))
    shares = [base] * n
    for i in order[:leftover]:
        shares[i] += 1
    return shares
