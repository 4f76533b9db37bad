"""The webhooks' rules with no service: which addresses and URLs may be sent to, that a connection
goes to the address that was checked (one lookup), and signatures the Standard Webhooks library
verifies, with one secret or two."""
import asyncio
import ipaddress
import socket
import uuid
from datetime import datetime, timezone

import aiohttp
import pytest
from django.test import override_settings
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from users.events.cloudevents import Outgoing
from users.webhooks import network, sender, signing

REFUSED = [
    "127.0.0.1", "127.8.9.10", "0.0.0.0", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
    "100.64.0.1", "100.100.100.200", "192.0.0.1", "198.18.0.1", "224.0.0.1", "255.255.255.255", "::1", "::",
    "fe80::1", "fc00::1", "fd00:ec2::254", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::1",
    "2001:0:4136:e378:8000:63bf:f5ff:fffe", "ff02::1",
]
ALLOWED = ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001:82b::200e"]


@pytest.mark.parametrize("address", REFUSED)
def test_loopback_private_link_local_shared_reserved_and_multicast_addresses_are_refused(address):
    assert not network.address_allowed(ipaddress.ip_address(address))
    with override_settings(WEBHOOKS_ALLOW_PRIVATE=True):
        assert network.address_allowed(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address):
    assert network.address_allowed(ipaddress.ip_address(address))


def test_http_only_for_the_allowed_hosts():
    with pytest.raises(network.Refused, match="only https"):
        network.url_check("http://hooks.example.com/in")
    with override_settings(WEBHOOKS_ALLOW_HOSTS=["Hooks.Example.com"]):
        network.url_check("http://hooks.example.com/in")
        network.url_check("https://hooks.example.com/in")
        with pytest.raises(network.Refused, match="only https"):
            network.url_check("http://other.example.com/in")


def resolving(monkeypatch, *answers: list[str]) -> list[str]:
    """getaddrinfo answers each call with the next list of addresses (a rebinding DNS server)."""
    asked: list[str] = []

    async def getaddrinfo(self, host, port, **kwargs):
        asked.append(host)
        return [(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (address, port, 0, 0) if ":" in address else (address, port))
                for address in answers[len(asked) - 1]]

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", getaddrinfo)
    return asked


def connecting(monkeypatch) -> list[str]:
    """The addresses aiohttp's connector is handed to connect to (and fails to, on purpose)."""
    connected: list[str] = []

    async def start_connection(addr_infos, **kwargs):
        connected.extend(info[4][0] for info in addr_infos)
        raise OSError("recorded, not connected")

    monkeypatch.setattr(aiohttp.connector.aiohappyeyeballs, "start_connection", start_connection)
    return connected


def post(url: str) -> Exception:
    async def run() -> Exception:
        async with sender.client() as http:
            try:
                await sender.post(sender.Endpoint(1, url, [signing.secret_new()]), EVENT, http=http)
            except Exception as exc:  # noqa: BLE001
                return exc
        raise AssertionError("it was sent")

    return asyncio.run(run())


EVENT = Outgoing(uuid.uuid4(), 1, 1, "user.updated", datetime.now(timezone.utc), "{}", "user")


def test_the_connection_goes_to_the_address_checked_after_one_lookup(monkeypatch):
    asked = resolving(monkeypatch, ["93.184.215.14"], ["127.0.0.1"])  # a second answer would point home
    connected = connecting(monkeypatch)
    assert isinstance(post("https://hooks.example.com/in"), aiohttp.ClientConnectorError)
    assert asked == ["hooks.example.com"] and connected == ["93.184.215.14"]


def test_a_name_with_only_private_addresses_is_refused_and_a_mixed_one_goes_to_its_public_ones(monkeypatch):
    resolving(monkeypatch, ["127.0.0.1", "10.0.0.1"], ["10.0.0.2", "1.1.1.1", "::1", "2606:4700:4700::1111"])
    connected = connecting(monkeypatch)
    refused = post("https://rebind.example.com/in")
    assert isinstance(refused, network.Refused) and connected == []
    assert "rebind.example.com resolves to 127.0.0.1, 10.0.0.1" in str(refused)
    post("https://mixed.example.com/in")
    assert sorted(connected) == ["1.1.1.1", "2606:4700:4700::1111"]  # none private


def test_an_address_literal_is_judged_before_any_connection(monkeypatch):
    connected = connecting(monkeypatch)
    with override_settings(WEBHOOKS_ALLOW_HOSTS=["10.0.0.1"]):
        assert "not a public address" in str(post("http://10.0.0.1/in"))
    assert connected == []


def test_signatures_verify_with_the_standard_webhooks_library_one_secret_or_two():
    old, new = signing.secret_new(), signing.secret_new()
    assert old.startswith("whsec_") and old != new
    body = b'{"specversion":"1.0","data":{"bio":"\xc3\xa9"}}'
    headers = signing.headers(message_id="e1", timestamp=datetime.now(timezone.utc), body=body, secrets=[new, old])
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers)["data"] == {"bio": "é"}
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.secret_new()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body + b" ", headers)


def test_the_deploy_check_warns_while_private_addresses_are_allowed():
    assert network.check_private_addresses() == []
    with override_settings(WEBHOOKS_ALLOW_PRIVATE=True):
        [warning] = network.check_private_addresses()
    assert warning.id == "users.W013"
