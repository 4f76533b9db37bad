"""sidus/http/dispatch.py: a sync handler of an async adrf view runs in one thread with all around it."""
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


async def test_a_sync_handler_runs_in_one_hop_with_authentication_and_throttles(hops):
    request = AsyncRequestFactory().get("/")
    view = Probe.as_view({"get": "alist"}, throttle_classes=[SyncAllowance])
    response = await view(request)
    assert response.status_code == 200
    authenticated, handled = request.threads
    assert authenticated == handled != threading.get_ident()
    assert hops == ["SyncToAsync"]  # adrf alone: initial, handler, and its empty async throttle check
