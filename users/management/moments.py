"""What the commands take as a time: `--since 2026-12-01` or `--since 2026-12-01T10:00+01:00`."""
from datetime import datetime
from datetime import timezone as dt_timezone

from django.core.management.base import CommandError
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.timezone import is_naive, make_aware


def moment(text: str, *, option: str = "--since") -> datetime:
    """An ISO 8601 date (its midnight) or time, UTC unless it says; CommandError if it is neither."""
    value = parse_datetime(text) or (parse_datetime(f"{text}T00:00") if parse_date(text) else None)
    if value is None:
        raise CommandError(f"{option}: not an ISO 8601 date or time: {text!r}")
    return make_aware(value, dt_timezone.utc) if is_naive(value) else value
