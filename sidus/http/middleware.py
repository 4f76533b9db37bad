"""Django's middleware for an async API, with no thread hop on the API's requests.

Under ASGI each `MiddlewareMixin` runs its process_request/process_response in a thread: two
hops per middleware and request, and a sync-only middleware (WhiteNoise) makes Django adapt the
whole chain around it. These are Django's own classes, behaviour unchanged, run differently:
- Security, Common and XFrameOptions do no I/O: their methods run on the event loop.
- Session, CSRF, authentication and messages serve the admin alone: they run (with their hops)
  under ADMIN_PREFIX, and let every other request through untouched. The API authenticates
  with JWT and DRF's views are CSRF-exempt.
- WhiteNoise looks files up only under its static prefix.
Subclasses, not wrappers, so that Django's system checks still find the middleware they expect.
"""
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware as DjangoMessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.core import checks
from django.http import HttpRequest, HttpResponseBase
from django.middleware.clickjacking import XFrameOptionsMiddleware as DjangoXFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware as DjangoCommonMiddleware
from django.middleware.csrf import CsrfViewMiddleware as DjangoCsrfViewMiddleware
from django.middleware.security import SecurityMiddleware as DjangoSecurityMiddleware
from django.utils.module_loading import import_string
from whitenoise.middleware import WhiteNoiseMiddleware

ADMIN_PREFIX = "/admin/"


class _OnTheLoop:
    """For middleware whose methods do no I/O: call them on the event loop, as plain functions."""

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.process_request(request) if hasattr(self, "process_request") else None
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            response = self.process_response(request, response)
        return response


class SecurityMiddleware(_OnTheLoop, DjangoSecurityMiddleware):
    pass


class CommonMiddleware(_OnTheLoop, DjangoCommonMiddleware):
    pass


class XFrameOptionsMiddleware(_OnTheLoop, DjangoXFrameOptionsMiddleware):
    pass


class _AdminOnly:
    """For middleware only the admin needs: other paths go past it without a hop."""

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path_info.startswith(ADMIN_PREFIX):
            return await super().__acall__(request)
        return await self.get_response(request)


class SessionMiddleware(_AdminOnly, DjangoSessionMiddleware):
    pass


class AuthenticationMiddleware(_AdminOnly, DjangoAuthenticationMiddleware):
    pass


class MessageMiddleware(_AdminOnly, DjangoMessageMiddleware):
    pass


class CsrfViewMiddleware(_AdminOnly, DjangoCsrfViewMiddleware):
    async def process_view(self, request: HttpRequest, *args: Any) -> HttpResponseBase | None:
        # Django runs every process_view for every view, a hop each unless it is a coroutine.
        if request.path_info.startswith(ADMIN_PREFIX):
            return await sync_to_async(super().process_view)(request, *args)
        return None


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, async-capable: it looks for a file (in a thread) only under the static prefix."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(get_response, *args, **kwargs)
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path_info.startswith(self.static_prefix):
            response = await sync_to_async(self._serve_file)(request)
            if response is not None:
                return response
        return await self.get_response(request)

    def _serve_file(self, request: HttpRequest) -> HttpResponseBase | None:
        static_file = self.find_file(request.path_info) if self.autorefresh else self.files.get(request.path_info)
        return None if static_file is None else self.serve(static_file, request)


@checks.register(checks.Tags.security, deploy=True)
def check_security_middleware(**kwargs: Any) -> list[checks.CheckMessage]:
    """Django's security.W001-W003 look for its own class names, which these subclasses replace
    (settings.SILENCED_SYSTEM_CHECKS): check that the subclasses are in place instead."""
    middleware = [import_string(path) for path in settings.MIDDLEWARE]
    required = (DjangoSecurityMiddleware, DjangoXFrameOptionsMiddleware, DjangoCsrfViewMiddleware)
    return [
        checks.Warning(f"No subclass of {cls.__name__} in MIDDLEWARE.", id="sidus.W001")
        for cls in required
        if not any(isinstance(m, type) and issubclass(m, cls) for m in middleware)
    ]
