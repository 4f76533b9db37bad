"""Errors in DRF's shapes: Django's ValidationError is a 400, a taken username or email a 409, a
body over the limit a 413, a database outage a 503, never a 500."""
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import OperationalError
from django.http import HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Service temporarily unavailable, try again later."
    default_code = "service_unavailable"


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "request_too_large"


def request_too_large_detail() -> str:
    return f"Request body too large: the limit is {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."


class Conflict(exceptions.APIException):
    """The request is sound, but the state of things refuses it."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "Conflict with the current state."
    default_code = "conflict"


class Taken(exceptions.ValidationError):
    """Field errors that are all "already taken": nothing is wrong with the input but the state."""

    status_code = status.HTTP_409_CONFLICT


def _leaf_codes(codes: Any) -> set[str]:
    if isinstance(codes, dict):
        return set().union(*map(_leaf_codes, codes.values()))
    if isinstance(codes, list):
        return set().union(*map(_leaf_codes, codes))
    return {codes}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    if isinstance(exc, exceptions.ValidationError) and _leaf_codes(exc.get_codes()) == {"unique"}:
        exc = Taken(exc.detail)
    elif isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge(request_too_large_detail())
    elif isinstance(exc, OperationalError):
        logger.warning("Database unavailable: %r", exc)
        exc = ServiceUnavailable()
    return drf_exception_handler(exc, context)


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """handler404: a JSON body like the API's own 404s, for URLs no view matched."""
    return JsonResponse({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
