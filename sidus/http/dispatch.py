"""One thread hop per request for adrf views whose handler is sync.

adrf's `async_dispatch` runs `initial()` (authentication, permissions, throttles) in one thread,
then a sync handler in another, and its `check_throttles` hops back to the loop for async
throttles even when there are none: three hops, each a context switch and a thread handover on
the hot write path. Here a sync handler runs with everything around it in one thread,
as in plain DRF; async handlers (the public read) stay on the loop.
"""
from inspect import iscoroutinefunction
from typing import Any

from asgiref.sync import sync_to_async
from django.utils.cache import add_never_cache_headers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView as DRFAPIView


class OneHopMixin:
    """Mix before adrf's `APIView` or `GenericViewSet`."""

    async def async_dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        method = request.method.lower()
        handler = getattr(self, method, None) if method in self.http_method_names else None
        if handler is not None and not iscoroutinefunction(handler):
            return await sync_to_async(self.sync_dispatch)(request, *args, **kwargs)
        return await super().async_dispatch(request, *args, **kwargs)

    def check_throttles(self, request: Request) -> None:
        if any(iscoroutinefunction(throttle.allow_request) for throttle in self.get_throttles()):
            return super().check_throttles(request)  # adrf's: awaits them on the loop
        return DRFAPIView.check_throttles(self, request)


class NoStoreViewMixin(OneHopMixin):
    """Sync views whose answers carry tokens or account state (simplejwt's, the account
    lifecycle's): one thread hop each, throttles included, and no cache may keep what they say."""

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        add_never_cache_headers(response)
        return response
