"""What every request to Django shares: the events it records are its client's."""
from collections.abc import Awaitable, Callable

from asgiref.sync import markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from users import events
from users.models import UserEvent


class ActorMiddleware:
    """Every event a request records is the user's (`actor: user`: the account's owner or whoever
    tries to be them), but for staff's in the admin (`events.by_staff`). Elsewhere (tasks,
    commands) events are the system's."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]]) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        with events.acting(UserEvent.Actor.USER):
            return await self.get_response(request)
