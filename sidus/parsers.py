"""The API's only parser: JSON whose every failure is a 400, never a 500."""
from typing import IO, Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json  # rejects NaN and Infinity, as DRF's strict JSON does


class JSONParser(parsers.JSONParser):
    """DRF's JSONParser, which catches ValueError only: a body nested ~1000 deep raises
    RecursionError and an unknown charset LookupError, both 500s there.

    The size limit is Django's (DATA_UPLOAD_MAX_MEMORY_SIZE, checked when DRF reads
    `request.body`); the exception handler turns it into a 413.
    """

    def parse(self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        try:
            return json.loads(stream.read().decode(encoding))
        except (LookupError, ValueError, RecursionError) as exc:
            raise ParseError(f"JSON parse error - {type(exc).__name__}: {str(exc)[:200]}")
