"""The published key set and discovery document at the edge: Django's own answer, kept per route,
scheme and host while this worker's key set is the one it was made from, and replayed from
memory, as the hot profile is. Anything but a plain GET (a query, a precondition, another Accept)
is Django's, and so is every answer after the keys change, until it is kept again."""
from typing import Any

from sidus.edge import Django, EdgeRequest, Route
from sidus.edge.answers import shareable
from sidus.edge.request import Message, Send
from users.runtime import current

Kept = tuple[Message, Message]


class KeptDocuments:
    """This worker's copies of Django's answers, each with the key set it was made from."""

    def __init__(self) -> None:
        self._kept: dict[tuple[str, bool, bytes], tuple[Any, Kept]] = {}

    def get(self, key: tuple[str, bool, bytes], keys: Any) -> Kept | None:
        found = self._kept.get(key)
        return found[1] if found is not None and found[0] is keys else None

    def keep(self, key: tuple[str, bool, bytes], keys: Any, answer: Kept) -> None:
        if len(self._kept) > 64:  # hosts are few (ALLOWED_HOSTS): a bound, not a policy
            self._kept.clear()
        self._kept[key] = (keys, answer)


def _replayable(request: EdgeRequest) -> bool:
    """A request whose answer is the same for every client: no query, no precondition, an Accept
    Django answers with plain JSON (`plain`), and no ETag to compare (Django answers that one)."""
    return request.plain and b"if-none-match" not in request.headers


def _documents(name: str) -> tuple[Any, Any]:
    def memory(request: EdgeRequest, argument: Any) -> Kept | None:
        if not _replayable(request):
            return None
        runtime = current()
        return runtime.documents.get((name, request.secure, request.host),
                                     runtime.signing_keys.current(sync=False))

    async def handler(request: EdgeRequest, argument: Any, send: Send, django: Django) -> None:
        runtime = current()
        keys = runtime.signing_keys.current(sync=False)  # before Django reads them: never newer than its answer
        start, messages = await django.kept(request)
        if (_replayable(request) and keys is not None and start is not None and len(messages) == 2
                and shareable(start["status"], start["headers"])):
            runtime.documents.keep((name, request.secure, request.host), keys, (start, messages[1]))
        for message in messages:
            await send(message)

    return memory, handler


def _route(name: str) -> Route:
    memory, handler = _documents(name)
    return Route(name, frozenset({"GET"}), handler, memory=memory)


ROUTES = (_route("jwks"), _route("openid_configuration"))
