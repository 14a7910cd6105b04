"""Signed webhook deliveries of job events: fan-out, retries with backoff, dead letters.

Each event becomes one delivery per endpoint of its tenant (idempotent, so any number of
processes may fan out). A delivery is POSTed as canonical JSON with
`X-TrustFabric-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`;
receivers recompute it and reject old timestamps. Failures are retried with exponential
backoff; after the last attempt a delivery is DEAD until an operator replays it. An endpoint
gets its events in order unless a retry intervenes; each carries its time (`at`).
"""

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import secrets
import socket
import time
import unicodedata
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol
from urllib.parse import urlparse

import aiohttp
from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver

from trustfabric.domain.audit import iso
from trustfabric.domain.events.records import PSI_JOB, SUBJECT_KEYS
from trustfabric.domain.psi.bundles import canonical
from trustfabric.errors import BadUserInput, Unavailable

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-TrustFabric-Signature"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(secret: str, body: bytes, header: str, tolerance_s: int = 300) -> bool:
    """What a receiver does (and the tests): recompute, compare in constant time."""
    if not header.isascii():  # int() reads other scripts' digits; compare_digest would raise
        return False
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), header)


def _private(address: str) -> bool:
    """Not an address of the public internet: private, loopback, link-local, reserved, the
    carriers' shared space (100.64.0.0/10, where some clouds keep their metadata service),
    multicast or unspecified."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        # an IPv4 address carried inside (mapped, 6to4, Teredo, IPv4-compatible ::a.b.c.d,
        # NAT64's 64:ff9b::a.b.c.d) is where it leads
        carried = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if carried is None and (ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1)):
            carried = ipaddress.IPv4Address(ip.packed[12:])
        if ip.is_site_local or (carried is not None and _private(str(carried))):
            return True
    return not ip.is_global or ip.is_multicast or ip.is_unspecified


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def _host(hostname: str) -> str:
    """The host as resolvers and the HTTP client read it: full-width and circled digits
    and other compatibility forms folded (NFKC), lower case, IDNA (which also reads the
    ideographic full stops as dots), without the trailing dot of a fully qualified name.
    `１２７.０.０.１` and `localhost.` are 127.0.0.1 and localhost to them, so to the
    check too. UnicodeError when no resolver could read it."""
    folded = unicodedata.normalize("NFKC", hostname).lower()
    return folded.encode("idna").decode("ascii").removesuffix(".")


def _literal_address(host: str) -> str | None:
    """The address a host written as a number stands for, in any of the forms resolvers
    accept (127.0.0.1, 127.1, 2130706433, 0x7f000001, ::1); None for a name."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def check_url(url: str, allow_private: bool) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("https", "http") or not parsed.hostname or len(url) > 2048:
        raise BadUserInput("url must be an http(s) URL")
    try:  # what a delivery would trip over: a port out of range, a name DNS cannot carry
        _ = parsed.port
        host = _host(parsed.hostname)
    except (ValueError, UnicodeError):
        raise BadUserInput("url must have a valid host name and port") from None
    if not allow_private:
        literal = _literal_address(host)
        if (literal is not None and _private(literal)) or host == "localhost" \
                or host.endswith(".localhost"):
            raise BadUserInput("url must not point at a private or loopback address")
    return url


class PublicResolver(ThreadedResolver):
    """Resolves a name for a connection and refuses it if any of its addresses is private:
    the addresses checked are the ones connected to. A check by a lookup of its own could
    be answered with a public address and the connection's lookup with a private one (DNS
    rebinding)."""

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        addresses = await super().resolve(host, port, family)
        if any(_private(address["host"]) for address in addresses):
            raise OSError(f"{host} resolves to a private address")
        return addresses


async def resolves_privately(url: str) -> bool:
    """At delivery: a name may resolve to a private address (or be made to, later)."""
    parsed = urlparse(url)
    try:
        host = _host(parsed.hostname or "")
        literal = _literal_address(host)
        if literal is not None:  # judged as at registration, whatever the resolver says
            return _private(literal)
        if host == "localhost" or host.endswith(".localhost"):
            return True
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, parsed.port or (443 if parsed.scheme == "https" else 80))
    except (OSError, UnicodeError, ValueError):
        return False  # unresolvable: the request itself fails and is retried
    return any(_private(str(info[4][0])) for info in infos)


def backoff(attempts: int, base_s: float, cap_s: float = 3600.0) -> float:
    """Exponential with full jitter: base × 2^(attempts-1), at most an hour."""
    return secrets.SystemRandom().uniform(0.5, 1.0) * min(cap_s, base_s * 2.0 ** (attempts - 1))


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a tenant's job events are sent (its secret is shown once, at registration)."""

    id: str
    tenant: str
    url: str
    created_at: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """One job event owed to one endpoint, and how sending it went so far."""

    id: str
    endpoint_id: str
    tenant: str
    event_id: str
    job_id: str
    job_status: str
    event_at: str
    status: str  # PENDING, DELIVERED, DEAD or CANCELLED
    attempts: int
    next_attempt_at: str | None = None
    last_attempt_at: str | None = None
    last_error: str | None = None
    topic: str = PSI_JOB  # of the event: for ANOMALY, job_id names the anomaly


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A delivery claimed to be sent: where to, signed with what, and whether its endpoint
    is still active (one deactivated as it was fanned out or replayed is cancelled)."""

    delivery: Delivery
    url: str
    secret: str = field(repr=False)
    active: bool


def payload(delivery: Delivery) -> dict[str, Any]:
    """The body sent: `<topic>.<status>` (`psi.job.done`, `anomaly.page`, …) with its
    subject under the topic's key (`jobId`, `anomalyId`, `ruleId`, `week`, `proposalId`)."""
    subject = SUBJECT_KEYS.get(delivery.topic, "subject")
    return {"id": delivery.event_id, "type": f"{delivery.topic}.{delivery.job_status.lower()}",
            "tenant": delivery.tenant, subject: delivery.job_id,
            "status": delivery.job_status, "at": delivery.event_at}


class DeliveryStore(Protocol):
    """Webhook deliveries as the dispatcher sees them (`graph.webhooks.WebhookRepository`)."""

    async def fan_out(self, limit: int = 20, pages: int = 10) -> int | None: ...

    async def claim_due(self, lease_until: str, limit: int, busy: Iterable[str] = ()
                        ) -> list[DueDelivery]: ...

    async def extend_leases(self, delivery_ids: list[str], lease_until: str) -> None: ...

    async def retry_later(self, delivery_id: str, attempts: int, at: str, error: str) -> None: ...

    async def settle(self, delivery_id: str, status: str, attempts: int,
                     error: str | None) -> None: ...


class WebhookDispatcher:
    def __init__(self, repo: DeliveryStore, *, max_attempts: int, backoff_base_s: float,
                 timeout_s: float, interval_s: float, allow_private: bool) -> None:
        self.repo = repo
        self.allow_private = allow_private
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.timeout_s = timeout_s
        self.interval_s = interval_s
        # An endpoint's deliveries go one after another, in a sender of its own that
        # outlives the round: a slow endpoint holds back its own deliveries, not the next
        # round and every other tenant's. Its next ones are claimed once it is done.
        self._senders: dict[str, asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        """The HTTP client deliveries are sent with: the timeout, and unless private
        addresses are allowed, a resolver that refuses them as it connects."""
        connector = None if self.allow_private else aiohttp.TCPConnector(
            resolver=PublicResolver())
        return aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=self.timeout_s))

    async def round(self) -> None:
        """Fans new job events out to deliveries, then sends those due."""
        if self._session is None:
            self._session = self.session()
        # apart: a fan-out that keeps failing must not stop retries and replays
        if await self._guarded(self.repo.fan_out, "fan-out") is not None:
            # with no endpoint, nothing is due
            session = self._session
            await self._guarded(lambda: self.deliver_due(session), "delivery")

    async def close(self) -> None:
        """What a sender had not sent is claimed again when its lease ends."""
        for sender in self._senders.values():
            sender.cancel()
        await self.sent()
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def sending(self) -> list[str]:
        """The endpoints whose deliveries are being sent."""
        return list(self._senders)

    async def sent(self) -> None:
        """Waits for the senders under way."""
        await asyncio.gather(*self._senders.values(), return_exceptions=True)

    @staticmethod
    async def _guarded(step: Callable[[], Awaitable[int | None]], what: str) -> int | None:
        """The step's result; 0 if it failed (logged: a dead dispatcher would silence every
        endpoint)."""
        try:
            return await step()
        except Unavailable:
            log.warning("webhooks %s: database unavailable; retrying", what)
        except Exception:
            log.exception("webhooks %s failed; retrying", what)
        return 0

    async def deliver_due(self, session: aiohttp.ClientSession) -> int:
        """Claims what is due for endpoints not being sent to, and starts a sender for each
        of them (`sent` waits for them); returns how many were claimed."""
        now = datetime.now(UTC)
        due = await self.repo.claim_due(iso(self._held(now, 1)), limit=50, busy=self.sending)
        by_endpoint: dict[str, list[DueDelivery]] = defaultdict(list)
        for claimed in due:  # claimed oldest event first
            delivery = claimed.delivery
            if claimed.active:
                by_endpoint[delivery.endpoint_id].append(claimed)
            else:  # fanned out or replayed as its endpoint was deactivated
                await self.repo.settle(delivery.id, "CANCELLED", delivery.attempts,
                                       DEACTIVATED)
        longest = max((len(queue) for queue in by_endpoint.values()), default=0)
        held_until = self._held(now, max(longest, 1))
        if longest > 1:  # sent one after another: held until the last may have been sent
            await self.repo.extend_leases(
                [claimed.delivery.id for queue in by_endpoint.values() for claimed in queue],
                iso(held_until))

        for endpoint_id, queue in by_endpoint.items():
            sender = asyncio.create_task(self._send_in_order(session, queue, held_until))
            self._senders[endpoint_id] = sender
            sender.add_done_callback(partial(self._sender_done, endpoint_id))
        return len(due)

    def _sender_done(self, endpoint_id: str, _: asyncio.Task[None]) -> None:
        self._senders.pop(endpoint_id, None)

    def _held(self, now: datetime, sends: int) -> datetime:
        """How long claimed deliveries are leased: twice the send timeout for each send
        that may come before the last of them."""
        return now + timedelta(seconds=self.timeout_s * 2 * sends)

    async def _send_in_order(self, session: aiohttp.ClientSession,
                             queue: list[DueDelivery], held_until: datetime) -> None:
        for claimed in queue:
            if datetime.now(UTC) + timedelta(seconds=self.timeout_s) > held_until:
                return  # its lease may end before its send does: another claim sends it
            try:
                await self._send(session, claimed.delivery, claimed.url, claimed.secret)
            except Exception:  # the database, recording the outcome: sent again after the lease
                log.exception("webhook delivery %s: outcome not recorded", claimed.delivery.id)
                return

    async def _send(self, session: aiohttp.ClientSession, delivery: Delivery, url: str,
                    secret: str) -> None:
        body = canonical(payload(delivery))
        headers = {"content-type": "application/json", "X-TrustFabric-Event-Id":
                   delivery.event_id, SIGNATURE_HEADER: sign(secret, body, int(time.time()))}
        error = None
        try:
            if not self.allow_private and await asyncio.wait_for(resolves_privately(url),
                                                                 self.timeout_s):
                error = "blocked: resolves to a private address"
            else:
                # no redirects: a redirect could lead the request into a private network
                async with session.post(url, data=body, headers=headers,
                                        allow_redirects=False) as response:
                    if not 200 <= response.status < 300:
                        error = f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as failure:
            # a URL registered before it was checked as now (a bad port or name) fails its
            # attempts like any other error, rather than stop this round, for ever
            error = type(failure).__name__
        attempts = delivery.attempts + 1
        if error is None:
            await self.repo.settle(delivery.id, "DELIVERED", attempts, None)
        elif attempts >= self.max_attempts:
            log.warning("webhook delivery %s is dead after %d attempts", delivery.id, attempts)
            await self.repo.settle(delivery.id, "DEAD", attempts, error)
        else:
            retry_at = datetime.now(UTC) + timedelta(
                seconds=backoff(attempts, self.backoff_base_s))
            await self.repo.retry_later(delivery.id, attempts, iso(retry_at), error)


# why a deactivated endpoint's deliveries were cancelled
DEACTIVATED = "endpoint deactivated"
