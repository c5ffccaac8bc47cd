"""Validating platform payloads with pydantic, so malformed ones become PlatformError.

Connectors describe the few fields they read as pydantic models and call
:func:`parse_payload`; a missing field, a wrong type or a body that is not
JSON at all comes back as a :class:`PlatformError` that names the offending
field, never as a raw ``KeyError`` or ``ValidationError``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from trickle.connectors.base import PlatformError

T = TypeVar("T")


def parse_payload(adapter: TypeAdapter[T], data: Any, *, where: str) -> T:
    """Validate ``data`` against ``adapter``; errors name the first bad fields."""
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors()[:3]:
            location = ".".join(str(part) for part in error["loc"]) or "(body)"
            problems.append(f"{location}: {error['msg']}")
        more = f" (+{exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
        raise PlatformError(f"{where}: malformed payload: {'; '.join(problems)}{more}") from None
