"""The API's only parser: JSON whose every failure is a 400, never a 500."""
import codecs
from typing import IO, Any

from django.conf import settings
from django.utils.http import parse_header_parameters
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json  # rejects NaN and Infinity, as DRF's strict JSON does


class JSONParser(parsers.JSONParser):
    """DRF's JSONParser, which catches ValueError only: a body nested ~1000 deep raises
    RecursionError and an unknown charset LookupError, both 500s there. A charset Python does not
    know is refused: Django's request drops it silently (and DRF then reads the body as
    DEFAULT_CHARSET), which guesses at what the client meant. `media_type` is the whole
    Content-Type, as DRF's request passes it (and the edge's lean PATCH too).

    The size limit is Django's (DATA_UPLOAD_MAX_MEMORY_SIZE, checked when DRF reads
    `request.body`); the exception handler turns it into a 413.
    """

    def parse(self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None) -> Any:
        charset = parse_header_parameters(media_type or "")[1].get("charset")
        try:
            if charset is not None:
                codecs.lookup(charset)
        except LookupError:
            raise ParseError("JSON parse error - the Content-Type's charset is not one this server knows.")
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        try:
            return json.loads(stream.read().decode(encoding))
        except (LookupError, ValueError, RecursionError) as exc:
            raise ParseError(f"JSON parse error - {type(exc).__name__}: {str(exc)[:200]}")
