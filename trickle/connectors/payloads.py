"""Validating platform payloads with pydantic, so malformed ones become PlatformError.

Connectors describe the few fields they read as pydantic models and call
:func:`parse_payload`; a missing field, a wrong type, a time no month can
hold or a body nested too deeply comes back as a :class:`PlatformError` that
names the offending field, never as a raw ``KeyError``, ``ValidationError``,
``OverflowError`` or ``RecursionError``. Times a platform gives for likes are
declared as :data:`PlatformTime`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, AwareDatetime, TypeAdapter, ValidationError

from trickle.connectors.errors import PlatformError
from trickle.core.clock import clock
from trickle.core.events import checked_like_time
from trickle.core.text import printable

T = TypeVar("T")

_PROBLEMS_LISTED = 3


def _platform_time(value: datetime) -> datetime:
    # LikeTimeError is a ValueError: pydantic reports it as this field's error.
    return checked_like_time(value, clock.now())


PlatformTime = Annotated[AwareDatetime, AfterValidator(_platform_time)]
"""A time a platform gives for a like (GitHub's ``starred_at``): with a zone, converted to UTC,
and within the range :func:`trickle.core.events.checked_like_time` accepts (not before
``EARLIEST_LIKE_TIME``, not more than ``PLATFORM_CLOCK_SKEW`` ahead of the clock). A time
outside it, or one whose offset pushes it out of the calendar in UTC, is a validation error of
its field, so the payload is a :class:`PlatformError` naming it."""


def parse_payload(adapter: TypeAdapter[T], data: Any, *, where: str) -> T:
    """Validate ``data`` against ``adapter``; errors name the first bad fields.

    The field names in the message come from the payload (a dict's keys may be anything):
    they are shown through :func:`~trickle.core.text.printable`, bounded, and the offending
    values are never echoed.
    """
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False)[:_PROBLEMS_LISTED]:
            location = ".".join(printable(str(part), 40) for part in error["loc"]) or "(body)"
            problems.append(f"{location}: {printable(error['msg'], 200)}")
        more = exc.error_count() - _PROBLEMS_LISTED
        extra = f" (+{more} more)" if more > 0 else ""
        raise PlatformError(f"{where}: malformed payload: {'; '.join(problems)}{extra}") from None
    except RecursionError:
        raise PlatformError(f"{where}: malformed payload: nested too deeply") from None
    except OverflowError:  # a custom validator doing arithmetic on an outlandish value
        raise PlatformError(f"{where}: malformed payload: a value is out of range") from None
