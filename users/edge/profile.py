"""The profile's routes at the edge (sidus/edge): what it answers before Django, by Django's rules.

- `read_profile`: GET/HEAD /users/{id}/ in plain JSON, from L1 (`profile_in_memory`), else L2, else the miss loader
  (the row read on the event loop and rendered into Django's own headers), 304s included, with
  no thread hop. Django answers the first miss of each scheme, and everything that is not plain
  JSON; the edge keeps an answer of Django's only if the answer itself allows it
  (`sidus.edge.answers.shareable`).
- `update_profile`: PATCH /users/me/ (or one's own /users/{id}/) of the fields no other row, no
  email and no constraint depends on (`users.profile.fields.TEXT_FIELDS`), on the event loop. The body is
  parsed by the API's own parser and validated by `UserUpdateSerializer` itself, the token by
  simplejwt and `users.auth.authentication.token_refusal`, the rate limit counted on the same keys;
  the answer is `UserPrivateSerializer`'s in the headers Django gave the first such PATCH.
  Everything else, every refusal and every error is Django's: it words them.
"""
import functools
import io
import logging
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from sidus.edge import Django, EdgeRequest, Route, tagged
from sidus.edge.answers import render
from sidus.edge.request import Send
from sidus.http.parsers import JSONParser
from users import accounts, events, ratelimits
from users.auth.authentication import TOKEN_FIELDS, token_refusal, validated_token
from users.cache import shared
from users.models import User, UserEvent, user_id_from
from users.profile import routes
from users.profile.etags import body_etag
from users.profile.fields import TEXT_FIELDS
from users.profile.serializers import UserPrivateSerializer, UserUpdateSerializer, representation
from users.runtime import current

logger = logging.getLogger(__name__)

_X_CACHE = b"X-Cache"


# --- GET and HEAD /users/{id}/ ------------------------------------------------------------------


def profile_in_memory(request: EdgeRequest, user_id: int) -> tuple[dict, dict] | None:
    """The hot path: L1's answer, if it holds one for this read (else `read_profile`)."""
    answer = current().local_cache.get(user_id)
    if answer is None or answer.secure != request.secure or not request.plain:
        return None
    return answer.messages(b"L1", request.headers.get(b"if-none-match"), request.scope["method"] == "HEAD")


async def read_profile(request: EdgeRequest, user_id: int, send: Send, django: Django) -> None:
    if not request.plain:
        return await django.answer(request, tagged(send, _X_CACHE, b"MISS"))
    secure = request.secure
    if_none_match = request.headers.get(b"if-none-match")
    head = request.scope["method"] == "HEAD"
    runtime = current()
    local_cache, loader = runtime.local_cache, runtime.loader
    token = local_cache.token(user_id)
    answer, generation = await shared.read_answer(user_id)
    if answer is not None and answer.secure == secure:
        local_cache.set(user_id, answer, token)
        start, body = answer.messages(b"L2", if_none_match, head)
        await send(start)
        return await send(body)
    if head:
        return await django.answer(request, tagged(send, _X_CACHE, b"MISS"))
    answer = await loader.load(user_id, secure)
    if answer is None:
        # Django's answer, kept if it may be: a 200 (a 304 to the client's If-None-Match is passed on).
        start, messages = await django.kept(request)
        answer = loader.learn(start, messages, secure)
        if answer is None:
            send = tagged(send, _X_CACHE, b"MISS")
            for message in messages:
                await send(message)
            return
    local_cache.set(user_id, answer, token)
    start, body = answer.messages(b"MISS", if_none_match, head)
    await send(start)
    await send(body)
    # Kept in L2 once the client has its answer: the generation guards against a write meanwhile.
    await shared.store_answer(user_id, answer, generation)


# --- PATCH /users/me/ and /users/{own id}/ --------------------------------------------------------


@dataclass(frozen=True)
class _Patch:
    """A PATCH the edge may answer, as far as can be told without I/O."""

    token: Any
    user_id: int
    data: dict[str, str]


async def update_profile(request: EdgeRequest, user_id: int | None, send: Send, django: Django) -> None:
    patch = _lean_patch(request, user_id)
    if patch is None:
        return await django.answer(request, send)
    key = (f"{routes.ME if user_id is None else routes.PROFILE} PATCH", request.secure)
    templates = current().templates
    template = templates.get(key)
    if template is None:  # Django answers the first one of each route and scheme: its headers are the template
        start, messages = await django.kept(request)
        if start is not None:
            templates.learn(key, start["status"], start.get("headers", []))
        for message in messages:
            await send(message)
        return
    user = await _write(request, patch)
    if user is None:
        return await django.answer(request, send)
    body = JSONRenderer().render(representation(UserPrivateSerializer, user))
    headers = render(template, body, body_etag(body, user.updated_at).encode())
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_PARSERS = (JSONParser,)  # the API's own, as its view lists them


@functools.cache
def _update_serializer() -> UserUpdateSerializer:
    """`UserUpdateSerializer`, built once: building a ModelSerializer's fields costs most of
    validating a small PATCH, and its public `run_validation` keeps nothing from one run to the next."""
    return UserUpdateSerializer(partial=True)


def _validate(data: dict[str, Any]) -> dict[str, Any] | None:
    """`data` as `UserUpdateSerializer` validates it, or None where it refuses (Django words that)."""
    try:
        return dict(_update_serializer().run_validation(data))
    except ValidationError:
        return None


def _lean_patch(request: EdgeRequest, route_user_id: int | None) -> _Patch | None:
    """The PATCH, if the edge may answer it: no I/O, and no refusal worded here. Whatever raises
    (a validator that would need the database, say) is Django's to answer."""
    authorization = request.headers.get(b"authorization")
    if authorization is None or not request.plain:
        return None
    try:
        data = _parsed(request)
        if not isinstance(data, dict) or not data or not data.keys() <= TEXT_FIELDS:
            return None
        validated = _validate(data)
        if validated is None:
            return None
        token = validated_token(authorization)
    except Exception as exc:  # noqa: BLE001  anything at all: Django answers it
        logger.debug("Lean PATCH left to Django: %r", exc)
        return None
    user_id = user_id_from(str(token.get(jwt_settings.USER_ID_CLAIM))) if token is not None else None
    if user_id is None or route_user_id not in (None, user_id):
        return None
    return _Patch(token, user_id, validated)


def _parsed(request: EdgeRequest) -> Any:
    """The body as DRF's view would parse it: the parser its negotiation picks, handed the whole
    Content-Type and the request's encoding (else DEFAULT_CHARSET), as DRF's request does."""
    raw = request.headers.get(b"content-type", b"").decode("latin-1")
    parser = DefaultContentNegotiation().select_parser(_ContentType(raw), _PARSERS)
    if parser is None:
        raise ValueError("unsupported media type")
    context = {"encoding": request.encoding or settings.DEFAULT_CHARSET}
    return parser().parse(io.BytesIO(request.body or b""), raw, context)


@dataclass(frozen=True)
class _ContentType:
    content_type: str


async def _write(request: EdgeRequest, patch: _Patch) -> User | None:
    """The updated user, or None when Django must answer (a refusal, or PostgreSQL away)."""
    ended_sessions = current().ended_sessions

    async def admit(user: User) -> bool:
        """The token's checks on the row read, then the rate limit: what DRF's authentication and
        the view would decide, in their order."""
        # Whether the session ended is known here only while this worker's copy is fresh.
        if not ended_sessions.fresh or token_refusal(patch.token, user, ended=ended_sessions.ended) is not None:
            return False
        if ratelimits.rates_for("update"):
            caller = ratelimits.Caller(user, request.meta())
            if await sync_to_async(ratelimits.hit, thread_sensitive=False)(caller, "update") is not None:
                return False  # Django counts once more and answers 429
        return True

    try:
        with events.acting(UserEvent.Actor.USER):
            return await accounts.profile_update_async(user_id=patch.user_id, data=patch.data, admit=admit,
                                                       checks=TOKEN_FIELDS, secure=request.secure)
    except Exception as exc:  # noqa: BLE001  whatever it is, Django answers instead (503 if PostgreSQL is away)
        logger.debug("Lean PATCH fell back to Django: %r", exc)
        return None


ROUTES = (
    Route(routes.PROFILE, frozenset({"GET", "HEAD"}), read_profile, kwarg="pk", parse=user_id_from,
          memory=profile_in_memory),
    Route(routes.PROFILE, frozenset({"PATCH"}), update_profile, kwarg="pk", parse=user_id_from),
    Route(routes.ME, frozenset({"PATCH"}), update_profile),
)
