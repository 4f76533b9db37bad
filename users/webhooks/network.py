"""Where a webhook may be sent (SSRF): the URL's rule when an endpoint is saved, and the address's
when it is connected to.

Only `https` (plain `http` for the hosts of WEBHOOKS_ALLOW_HOSTS alone). At send time the name is
resolved once, every address is checked (no loopback, private, link-local, shared, reserved or
multicast range, so no cloud metadata service either, unless WEBHOOKS_ALLOW_PRIVATE), and the
connection is made to the address that was checked: no second lookup another answer could
slip into. TLS still verifies the certificate against the URL's host name.
"""
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver
from django.conf import settings
from django.core import checks
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator


class Refused(Exception):
    """This URL or address may not be sent to."""


def address_allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A globally routable unicast address, or any with WEBHOOKS_ALLOW_PRIVATE. An IPv6 address
    that carries an IPv4 one (mapped, 6to4, Teredo) is judged by that one too."""
    if settings.WEBHOOKS_ALLOW_PRIVATE:
        return True
    inner: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        inner += [a for a in (address.ipv4_mapped, address.sixtofour, *(address.teredo or ())) if a is not None]
    return all(a.is_global and not a.is_multicast for a in inner)


def url_check(url: str) -> None:
    """Raises Refused unless `url` may be an endpoint's: https (or http for an allowed host), a host,
    no user or password in it, and not an address literal that `address_allowed` refuses."""
    try:
        URLValidator(schemes=["http", "https"])(url)
        parts = urlsplit(url)
        parts.port  # noqa: B018  raises ValueError for a port out of range
    except (ValueError, ValidationError) as exc:
        raise Refused(f"not a URL: {exc.messages[0] if isinstance(exc, ValidationError) else exc}") from None
    host = (parts.hostname or "").lower()  # URLValidator saw one
    if parts.scheme != "https" and not (parts.scheme == "http" and host in _allowed_hosts()):
        raise Refused("only https URLs (plain http only for the hosts of WEBHOOKS_ALLOW_HOSTS)")
    if parts.username is not None or parts.password is not None:
        raise Refused("no user name or password in the URL: the signature authenticates sidus")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return
    if not address_allowed(literal):
        raise Refused(f"{host} is not a public address (WEBHOOKS_ALLOW_PRIVATE)")


def _allowed_hosts() -> set[str]:
    return {host.lower() for host in settings.WEBHOOKS_ALLOW_HOSTS}


class GuardedResolver(ThreadedResolver):
    """aiohttp's resolver, keeping only the addresses `address_allowed` takes: the connector then
    connects to one of those and to nothing else. (aiohttp asks no resolver for an address literal:
    `url_check` judges those.)"""

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        results = await super().resolve(host, port, family)
        allowed = [r for r in results if address_allowed(ipaddress.ip_address(r["host"].split("%")[0]))]
        if not allowed:
            found = ", ".join(dict.fromkeys(r["host"] for r in results))
            raise Refused(f"{host} resolves to {found}: not public addresses (WEBHOOKS_ALLOW_PRIVATE)")
        return allowed


@checks.register(checks.Tags.security, deploy=True)
def check_private_addresses(**kwargs: Any) -> list[checks.CheckMessage]:
    """Whoever may add an endpoint may make sidus post to any address it can reach."""
    if not settings.WEBHOOKS_ALLOW_PRIVATE:
        return []
    return [checks.Warning("WEBHOOKS_ALLOW_PRIVATE is on: webhook endpoints may reach loopback and private "
                           "addresses, your own network's services and the cloud's metadata service among them.",
                           hint="Turn it off, and run receivers on public addresses (or list only the hosts "
                           "you mean in WEBHOOKS_ALLOW_HOSTS, which allows plain http, not private addresses).",
                           id="users.W013")]
