"""simplejwt's token views on adrf: the async handler runs the serializer in one thread hop."""
from typing import Any

from adrf.views import APIView
from asgiref.sync import sync_to_async
from django.utils.cache import add_never_cache_headers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt import views as jwt_views


class _AsyncTokenMixin:
    async def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return await sync_to_async(super().post)(request, *args, **kwargs)

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        add_never_cache_headers(response)  # tokens must not land in any cache
        return response


class TokenObtainPairView(_AsyncTokenMixin, APIView, jwt_views.TokenObtainPairView):
    pass


class TokenRefreshView(_AsyncTokenMixin, APIView, jwt_views.TokenRefreshView):
    pass


class TokenBlacklistView(_AsyncTokenMixin, APIView, jwt_views.TokenBlacklistView):
    pass
