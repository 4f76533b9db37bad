"""`uvicorn sidus.asgi:application`: Django behind the user cache's hit path, plus the lifespan
that runs each worker's invalidation listener (Django's own ASGI app does not speak lifespan)."""
import gc
import os

from channels.routing import ProtocolTypeRouter
from django.core.asgi import get_asgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sidus.settings")
django_application = get_asgi_application()

from sidus.body_limit import BodySizeLimitMiddleware  # noqa: E402  (needs the settings)
from users.cache import UserCacheMiddleware, lifespan  # noqa: E402  (needs the apps loaded)
from users.profile_update import ProfileUpdateMiddleware  # noqa: E402

# Reads answered from the cache, bodies over the limit refused, the common PATCH done on the
# loop; the rest is Django's. The cache layer comes first, before the protocol router: an L1 hit is
# the cheapest request there is, and one coroutine frame less is a measurable part of it.
http = BodySizeLimitMiddleware(ProfileUpdateMiddleware(django_application))
application = UserCacheMiddleware(ProtocolTypeRouter({"http": http, "lifespan": lifespan}))

# Everything built so far lives as long as the worker: load the URL conf too (views, serializers),
# then move it all out of the garbage collector's sight. A full collection then scans only what
# requests allocate: its pauses, which showed as 70-80 ms tails in the invalidation delay under
# load, drop to about 15 ms (tests/benchmark.py).
get_resolver().url_patterns
gc.freeze()
