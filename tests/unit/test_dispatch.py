"""One thread hop per request: the async handlers and throttles that stay on the loop."""
import threading

from adrf.viewsets import GenericViewSet
from django.test import AsyncRequestFactory
from rest_framework.authentication import BaseAuthentication
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle

from sidus.http.dispatch import OneHopMixin


class RecordingAuthentication(BaseAuthentication):
    def authenticate(self, request):
        request._request.threads = [threading.get_ident()]
        return None


class SyncAllowance(BaseThrottle):
    def allow_request(self, request, view):
        return True


class AsyncRefusal(BaseThrottle):
    async def allow_request(self, request, view):
        return False

    def wait(self):
        return 7


class Probe(OneHopMixin, GenericViewSet):
    view_is_async = True
    authentication_classes = [RecordingAuthentication]
    permission_classes = []
    throttle_classes = []

    def alist(self, request):
        request._request.threads.append(threading.get_ident())
        return Response({})

    async def aretrieve(self, request, pk):
        request._request.threads.append(threading.get_ident())
        return Response({})


async def test_an_async_handler_stays_on_the_loop():
    request = AsyncRequestFactory().get("/")
    response = await Probe.as_view({"get": "aretrieve"})(request, pk="1")
    assert response.status_code == 200
    assert request.threads[-1] == threading.get_ident()


async def test_async_throttles_are_still_awaited():
    request = AsyncRequestFactory().get("/")
    view = Probe.as_view({"get": "alist"}, throttle_classes=[AsyncRefusal])
    response = await view(request)
    assert response.status_code == 429 and response["Retry-After"] == "7"


async def test_a_sync_handler_runs_in_one_hop_with_authentication_and_throttles(hops):
    request = AsyncRequestFactory().get("/")
    view = Probe.as_view({"get": "alist"}, throttle_classes=[SyncAllowance])
    response = await view(request)
    assert response.status_code == 200
    authenticated, handled = request.threads
    assert authenticated == handled != threading.get_ident()
    assert hops == ["SyncToAsync"]  # adrf alone: initial, handler, and its empty async throttle check
