"""The ceiling for the benchmark: an ASGI app answering fixed bytes, as fast as uvicorn allows."""
import json
import os

_response = json.loads(os.environ.get("BARE_ASGI_RESPONSE", '{"headers": [], "body": ""}'))
HEADERS = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in _response["headers"]]
BODY = _response["body"].encode()


async def app(scope: dict, receive, send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
