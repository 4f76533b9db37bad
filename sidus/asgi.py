"""`uvicorn sidus.asgi:application`: Django behind the user cache's hit path, plus the lifespan
that runs each worker's invalidation listener (Django's own ASGI app does not speak lifespan)."""
import os

from channels.routing import ProtocolTypeRouter
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sidus.settings")
django_application = get_asgi_application()

from sidus.body_limit import BodySizeLimitMiddleware  # noqa: E402  (needs the settings)
from users.cache import UserCacheMiddleware, lifespan  # noqa: E402  (needs the apps loaded)

application = ProtocolTypeRouter(
    {"http": UserCacheMiddleware(BodySizeLimitMiddleware(django_application)), "lifespan": lifespan}
)
