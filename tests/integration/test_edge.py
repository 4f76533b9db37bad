"""The edge's profile route, in this process, against real PostgreSQL and Redis."""
import pytest


@pytest.mark.django_db(transaction=True)
async def test_a_profile_whose_answer_varies_per_client_stays_djangos(asgi_client, loading, listening, monkeypatch):
    from asgiref.sync import sync_to_async

    from tests.support import PASSWORD
    from users.api.views import UserViewSet
    from users.models import User

    user = await sync_to_async(User.objects.create_user)("polyglot", "p@example.com", PASSWORD)
    original = UserViewSet.aretrieve

    async def localized(self, request, pk):
        response = await original(self, request, pk)
        response["Content-Language"] = request.headers.get("Accept-Language", "en")
        return response

    monkeypatch.setattr(UserViewSet, "aretrieve", localized)
    for language in ("fr", "de", "fr"):
        response = await asgi_client.get(f"/api/v1/users/{user.pk}/", headers={"Accept-Language": language})
        assert response.headers["content-language"] == language and response.headers["x-cache"] == "MISS"
