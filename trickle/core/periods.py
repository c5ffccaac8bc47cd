"""Calendar months, the unit trickle settles in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from trickle.core.clock import ensure_utc
from trickle.core.errors import TrickleError

_PERIOD = re.compile(r"^([0-9]{4})-([0-9]{2})$")


class PeriodError(TrickleError, ValueError):
    """A month that is not written YYYY-MM."""


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """One UTC calendar month, written ``2026-10``."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1970 <= self.year <= 9998:
            raise PeriodError(f"no such month: {self.year:04d}-{self.month:02d}")

    @classmethod
    def parse(cls, text: str) -> Period:
        """Read ``YYYY-MM``; anything else is a clear error."""
        match = _PERIOD.match(text.strip())
        if match is None:
            raise PeriodError(f"not a month: {text!r} (write it as YYYY-MM, e.g. 2026-10)")
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def of(cls, when: datetime) -> Period:
        """The month that contains ``when`` (in UTC)."""
        when = ensure_utc(when)
        return cls(when.year, when.month)

    @classmethod
    def from_index(cls, index: int) -> Period:
        """Inverse of :attr:`index`."""
        year, month0 = divmod(index, 12)
        return cls(year, month0 + 1)

    @property
    def index(self) -> int:
        """Months since year 0: consecutive months have consecutive indexes."""
        return self.year * 12 + self.month - 1

    @property
    def start(self) -> datetime:
        """First instant of the month, UTC."""
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """First instant of the next month, UTC (the month is ``[start, end)``)."""
        return self.next().start

    def next(self) -> Period:
        """The following month."""
        return Period.from_index(self.index + 1)

    def previous(self) -> Period:
        """The preceding month."""
        return Period.from_index(self.index - 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"
