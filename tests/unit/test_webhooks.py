"""Webhooks without a database: URL checks, signatures, and the dispatcher over a fake
repository and loopback receivers."""

import asyncio
import socket
import time
from dataclasses import replace

import pytest
from aiohttp import web

from tests.helpers import (
    OneDelivery,
    dispatcher_of,
    serve,
)
from trustfabric.domain.webhooks import (
    DueDelivery,
    check_url,
    resolves_privately,
    sign,
    verify_signature,
)
from trustfabric.errors import BadUserInput


def test_urls_and_signatures():
    for bad in ("ftp://x.example/h", "not a url", "http://"):
        with pytest.raises(BadUserInput):
            check_url(bad, allow_private=True)
    for private in ("http://127.0.0.1/h", "http://10.1.2.3/h", "http://localhost:9/h",
                    "http://[::1]/h", "http://169.254.169.254/latest", "http://2130706433/",
                    "http://0x7f000001/", "http://127.1/", "http://0.0.0.0/",
                    "http://100.100.100.200/latest/meta-data/",  # carriers' shared space
                    "http://[fec0::1]/h", "http://[2002:7f00:1::]/h"):  # site-local, 6to4
        with pytest.raises(BadUserInput):
            check_url(private, allow_private=False)
    # what a delivery would trip over: a name DNS cannot carry, a port out of range
    for unusable in ("https://a..example.com/hook", "https://hooks.example.com:99999/h"):
        with pytest.raises(BadUserInput):
            check_url(unusable, allow_private=True)
    assert check_url("https://hooks.example.com/x", allow_private=False)
    header = sign("s", b"{}", 1_000)
    assert not verify_signature("s", b"{}", header)  # too old
    now = str(int(time.time())).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    assert verify_signature("s", b"{}", f"t={now},v1=00") is False  # not an exception


@pytest.mark.parametrize("url", ["https://a..example.com/hook",
                                 "https://hooks.example.com:99999/hook"])
async def test_a_url_stored_before_it_was_checked_as_now_fails_its_attempts(url):
    """Registered by an earlier version: its delivery fails and is retried (then dead),
    instead of raising out of the round, never counted, claimed again for ever."""
    repo = OneDelivery(url)
    dispatcher = dispatcher_of(repo)
    async with dispatcher.session() as session:
        await dispatcher.deliver_due(session)
        await dispatcher.sent()
    assert repo.outcomes == [("RETRY", 1)]


async def test_a_name_rebound_to_a_private_address_after_the_check_is_not_reached(
        monkeypatch: pytest.MonkeyPatch):
    """The check's lookup answers with a public address, the connection's with loopback."""
    hits: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(status=204)

    runner, url = await serve(handle)
    answers = iter(["93.184.215.14"])

    async def getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (next(answers, "127.0.0.1"), port))]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    repo = OneDelivery(url.replace("127.0.0.1", "rebind.example"))
    dispatcher = dispatcher_of(repo)
    try:
        async with dispatcher.session() as session:
            await dispatcher.deliver_due(session)
            await dispatcher.sent()
    finally:
        monkeypatch.undo()
        await runner.cleanup()
    assert hits == [] and repo.outcomes == [("RETRY", 1)]


async def test_delivery_checks_where_a_name_resolves():
    # a name that resolves to loopback passes the registration check, not the delivery one
    assert check_url("http://localhost.example:1/", allow_private=False)
    assert await resolves_privately("http://localhost:1/")
    assert not await resolves_privately("http://8.8.8.8:1/")  # numeric: no lookup is sent


async def test_deliveries_go_on_while_the_fan_out_fails():
    class FanOutFails(OneDelivery):
        async def fan_out(self) -> int:
            raise RuntimeError("a fault in the fan-out")

    repo = FanOutFails("http://hooks.example.com:1/h")
    dispatcher = dispatcher_of(repo)
    try:
        await dispatcher.round()
        await dispatcher.sent()
    finally:
        await dispatcher.close()
    assert repo.outcomes[0] == ("RETRY", 1)  # attempted, though no fan-out succeeded


async def test_a_sender_leaves_what_it_could_not_send_within_its_lease_to_a_later_claim():
    """Recording each outcome takes longer than the lease allowed for: the sender stops
    rather than send what another claim may be sending by then."""

    class SlowToRecord(OneDelivery):
        async def claim_due(self, lease_until: str, limit: int, busy: object = ()
                            ) -> list[DueDelivery]:
            [due] = await super().claim_due(lease_until, limit)
            return [replace(due, delivery=replace(due.delivery, id=f"d{n}", event_id=f"e{n}"))
                    for n in range(3)]

        async def extend_leases(self, delivery_ids: list[str], lease_until: str) -> None:
            pass

        async def settle(self, delivery_id: str, status: str, attempts: int,
                         error: str | None) -> None:
            await asyncio.sleep(1.0)  # a database slower than the leases allow for
            await super().settle(delivery_id, status, attempts, error)

    async def ok(request: web.Request) -> web.Response:
        return web.Response(status=204)

    runner, url = await serve(ok)
    repo = SlowToRecord(url)
    dispatcher = dispatcher_of(repo, timeout_s=0.2, allow_private=True)
    try:
        async with dispatcher.session() as session:
            await dispatcher.deliver_due(session)  # held for 2 x 0.2 s x 3
            await dispatcher.sent()
    finally:
        await runner.cleanup()
    assert repo.outcomes == [("DELIVERED", 1)]  # the other two wait for their lease to end


async def test_an_address_check_that_hangs_fails_the_attempt_within_the_send_timeout(
        monkeypatch: pytest.MonkeyPatch):
    """A name server that does not answer: the attempt fails within the send timeout,
    not after the lookup gives up, by when its lease may have ended."""

    async def unanswered(*args: object, **kwargs: object) -> list:
        await asyncio.sleep(60)
        return []

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", unanswered)
    repo = OneDelivery("https://hooks.example.com/h")
    dispatcher = dispatcher_of(repo)  # a send timeout of 1 s
    async with dispatcher.session() as session:
        await dispatcher.deliver_due(session)
        await asyncio.wait_for(dispatcher.sent(), 10)
    assert repo.outcomes == [("RETRY", 1)]


LEADS_TO_LOOPBACK_OR_METADATA = [
    "http://１２７.０.０.１/h",  # full-width digits and dots
    "http://①②⑦.⓪.⓪.①/h",  # circled digits
    "http://127。0。0。1/h",  # ideographic full stops
    "http://ｌｏｃａｌｈｏｓｔ/h",
    "http://localhost./h",  # a fully qualified name: the same host
    "http://api.localhost./h",
    "http://[::127.0.0.1]/h",  # IPv4-compatible
    "http://[64:ff9b::7f00:1]/h",  # NAT64 of 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/h",  # NAT64 of 169.254.169.254, cloud metadata
]


@pytest.mark.parametrize("url", LEADS_TO_LOOPBACK_OR_METADATA)
async def test_hosts_are_judged_as_resolvers_read_them(url):
    """Normalised (NFKC, IDNA, no trailing dot) and by the IPv4 address an IPv6 one
    carries, at registration and again at delivery."""
    with pytest.raises(BadUserInput):
        check_url(url, allow_private=False)
    assert await resolves_privately(url)


@pytest.mark.parametrize("url", ["https://hooks.example.com/x", "http://8.8.8.8/",
                                 "http://[64:ff9b::808:808]/", "https://bücher.example/",
                                 "http://[2001:4860:4860::8888]/"])
def test_public_hosts_in_those_forms_are_still_accepted(url):
    assert check_url(url, allow_private=False) == url
