"""IdeaSoft's Admin API (`{store}/admin-api`): shop orders followed, moved on and noted through it, with the
OAuth2 authorisation code grant and rotating refresh tokens.

Sources: marketplace-apis-next.md §8 and its IS-mirror, atillakesicioglu/ideasoft-api-docs @ 6fd67e17 (a
mirror of apidoc.ideasoft.dev: `openapi/domains/admin-api/*.json`, `docs/webhooks.md`). The mirror's request
bodies are broken `$ref`s, so field names come from the order fields `docs/webhooks.md` lists and the
list filters `orders.json` gives; each guess is marked [UNSURE] where it is made and made so that a wrong
one stops with IdeaSoft's own words (`_IdeasoftOutbound`) rather than passing quietly.
specs/ideasoft-admin.openapi.yml holds the calls as made and answered.

Creating an order [UNSURE, the biggest IdeaSoft risk, notes §8.2 and §14.1]: the Admin API has no
`POST /admin-api/orders`. It has `POST /admin-api/draft_orders`, but a draft is, by its name, not an order
(how one becomes an order is not documented): the hub's order would be missing from the panel's orders and
from every later call here, which all name `/admin-api/orders/{id}`. The Store API's `POST /api/orders`
makes an order (the notes call it storefront checkout semantics), and takes the app's Bearer token like
the Admin API (IS-mirror docs/AUTHENTICATION.md). That is the call used, with the order's own fields (the
webhook field list) as its body. Whether a store takes an order without a member's cart this way is not
documented: one that refuses (no such route, a cart or a field it wants) answers 4xx, which is
`Permanent` with IdeaSoft's words ("IdeaSoft answered 422: …"), nothing was made, and the seller sees why;
switching to the draft call is then a change to `create_order` and `order_body` only.

Tokens: the seller connects the store once on IdeaSoft's consent page (`authorize_url`, `exchange_code`);
the pair is kept by a `TokenStore` (the hub's keeps it on the integration, connectors/factory.py). The
access token is renewed REFRESH_MARGIN before it ends, or after a 401, and the new pair saved at once:
refresh tokens are taken to rotate (the safe reading [UNSURE]), so a spent one answers invalid_grant; then
the store is read again once, since another process may have renewed and saved the pair first.

The hub's reference rides in the order's `referrer` field: IdeaSoft keeps it on the order (the webhook
field list has it) and `GET /admin-api/orders` filters by it ("Order yönlendirme filtresi", orders.json).
Whether that filter matches exactly or in part is not documented [UNSURE], so a found order must carry the
reference exactly; the lookup also bounds itself by creation date (`startCreatedAt`), so a store that
ignores the filter costs a few pages, not a duplicate. An order created without the referrer kept is
refused loudly after the create (a later lookup could not find it: a retry would make a duplicate).

Changed orders: there is no updated-since filter (notes §8.2) [UNSURE]. `changed_since` reads
`GET /admin-api/orders?sort=-id&startCreatedAt=…` pages (the last CHANGED_DAYS days, at most MAX_PAGES
pages) and keeps the hub's orders whose `updatedAt` is after `since`; webhooks (order/update) carry the
rest at once, and the poll is the safety net IdeaSoft's deleted subscriptions call for.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx

from connectors.base import (
    Address,
    InvalidAnswer,
    Permanent,
    RateLimited,
    ShopLine,
    ShopOrder,
    ShopOrderPlan,
    WebhookNotice,
    WebhookRefused,
    created_already,
)
from connectors.carriers import by_name
from connectors.http import Guard, Outbound, json_body, loads, retry_after, sanitised
from sync.statuses import CanonicalStatus as S

log = logging.getLogger(__name__)

PLATFORM = "IdeaSoft"
ISTANBUL = timezone(timedelta(hours=3), "Europe/Istanbul")  # the store's clock: UTC+3 all year
DAY = "%Y-%m-%d"  # startCreatedAt (orders.json: yyyy-mm-dd)
PAGE = 100  # orders.json: limit 1–100
MAX_PAGES = 20
CHANGED_DAYS = 30
CLOCK_SLACK = timedelta(days=1)
# The access token is renewed this long before it runs out.
REFRESH_MARGIN = timedelta(minutes=2)
# A 429 without Retry-After: IdeaSoft's limits and headers are not public (notes §8.1) [UNSURE].
RATE_LIMIT_WAIT = 60.0
REFERENCE_PREFIX = "hub-"  # sync.ingest.reference
CENT = Decimal("0.01")
UNIT = Decimal("0.0001")
NOTE_LENGTH = 1000
# IdeaSoft's webhook topics for orders (docs/webhooks.md).
TOPICS = ("order/create", "order/update")
SIGNATURE = "X-Ideashop-Hmac-Sha256"
# The credential keys the orchestrator's token store reads and writes (and the connector's seed without one).
ACCESS_KEY, REFRESH_KEY, EXPIRES_KEY = (
    "ideasoft_access_token",
    "ideasoft_refresh_token",
    "ideasoft_expires_at",
)
NOT_CONNECTED = "connect the store on IdeaSoft's consent page first"

# IdeaSoft's order statuses: a fixed enum (orders.json `status`), with the names its panel shows [UNSURE of
# the exact Turkish wording]; the three personal statuses are the seller's to name in the panel.
STATUSES: dict[str, str] = {
    "waiting_for_payment": "Ödeme Bekleniyor",
    "waiting_for_approval": "Onay Bekliyor",
    "approved": "Onaylandı",
    "being_prepared": "Hazırlanıyor",
    "on_accumulation": "Tedarik Sürecinde",
    "fulfilled": "Kargoya Verildi",
    "delivered": "Teslim Edildi",
    "cancelled": "İptal Edildi",
    "refunded": "İade Edildi",
    "personal_status_1": "Özel durum 1",
    "personal_status_2": "Özel durum 2",
    "personal_status_3": "Özel durum 3",
}
# notes §11: approved / being_prepared, fulfilled with the tracking code, cancelled.
DEFAULT_STATUS_MAP: dict[S, str] = {
    S.AWAITING: "waiting_for_payment",
    S.CREATED: "approved",
    S.PICKING: "being_prepared",
    S.INVOICED: "being_prepared",
    S.SHIPPED: "fulfilled",
    S.AT_COLLECTION_POINT: "fulfilled",  # IdeaSoft has no "at a collection point": still on its way
    S.DELIVERED: "delivered",
    S.UNDELIVERED: "fulfilled",  # nor "undelivered": the parcel is still with the carrier
    S.CANCELLED: "cancelled",
    S.UNSUPPLIED: "cancelled",
    S.RETURNED: "refunded",
}
# IdeaSoft's shippingProviderCode per carrier, matched by the start of the carrier's name as the hub has it
# (connectors/carriers.by_name), and the carrier's name as the hub reads it back [UNSURE: the codes are the
# store's cargo integrations'; a carrier not here goes without a provider code, its tracking code still
# written].
PROVIDERS: dict[str, tuple[str, str]] = {
    "trendyol express": ("trendyol_express", "Trendyol Express"),
    "yurtiçi": ("yurtici", "Yurtiçi Kargo"),
    "aras": ("aras", "Aras Kargo"),
    "mng": ("mng", "MNG Kargo"),
    "ptt": ("ptt", "PTT Kargo"),
    "sürat": ("surat", "Sürat Kargo"),
    "ups": ("ups", "UPS Kargo"),
    "hepsijet": ("hepsijet", "HepsiJET"),
}
CARRIER_NAMES = dict(PROVIDERS.values())


# -- OAuth2: the consent page, the code, the tokens ----------------------------------------------------


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_at: datetime  # UTC


class TokenStore(Protocol):
    """Where a store's tokens are kept between processes (the hub's: the integration's row)."""

    def load(self) -> Tokens | None: ...

    def save(self, tokens: Tokens) -> None: ...

    def hold(self) -> AbstractContextManager[None]:
        """Held while the tokens are renewed: one renewal at a time across every process (refresh tokens
        are single-use)."""
        ...


class MemoryTokens:
    """A store in memory: the tests', and the connector's own when it is given the tokens as credentials."""

    def __init__(self, tokens: Tokens | None = None) -> None:
        self.tokens = tokens
        self.saved = 0

    def load(self) -> Tokens | None:
        return self.tokens

    def save(self, tokens: Tokens) -> None:
        self.tokens = tokens
        self.saved += 1

    def hold(self) -> AbstractContextManager[None]:
        return nullcontext()


def tokens_from(credentials: Mapping[str, str]) -> Tokens | None:
    """The tokens kept in an integration's credentials (ACCESS_KEY, REFRESH_KEY, EXPIRES_KEY), if all are."""
    access, refresh, expires = (credentials.get(key, "") for key in (ACCESS_KEY, REFRESH_KEY, EXPIRES_KEY))
    if not (access and refresh and expires):
        return None
    try:
        ends = datetime.fromisoformat(expires)
    except ValueError:
        return None
    return Tokens(access, refresh, ends if ends.tzinfo else ends.replace(tzinfo=UTC))


def credentials_of(tokens: Tokens) -> dict[str, str]:
    """The tokens as the credentials keep them."""
    return {
        ACCESS_KEY: tokens.access_token,
        REFRESH_KEY: tokens.refresh_token,
        EXPIRES_KEY: tokens.expires_at.astimezone(UTC).isoformat(),
    }


def authorize_url(base_url: str, client_id: str, redirect_uri: str, state: str) -> str:
    """IdeaSoft's consent page for the store (notes §8.1): the seller approves, and comes back to
    `redirect_uri` with `code` and `state`."""
    query = urlencode(
        {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code", "state": state}
    )
    return f"{base_url.rstrip('/')}/panel/auth?{query}"


def exchange_code(
    guard: Guard,
    base_url: str,
    client_id: str,
    client_secret: str,
    code: str,
    redirect_uri: str,
    *,
    transport: httpx.BaseTransport | None = None,
) -> Tokens:
    """The code from the consent page, traded for the store's first tokens (grant_type=authorization_code,
    form-encoded, notes §8.1). A used or expired code is Permanent with IdeaSoft's words."""
    form = {
        "grant_type": "authorization_code",
        "client_id": client_id,
        "client_secret": client_secret,
        "code": code,
        "redirect_uri": redirect_uri,
    }
    http = _IdeasoftOutbound(guard, platform=PLATFORM, transport=transport)
    try:
        return _token_call(http, base_url, form, datetime.now(UTC))
    finally:
        http.close()


def _token_call(http: Outbound, base_url: str, form: Mapping[str, str], now: datetime) -> Tokens:
    response = http.request("POST", f"{base_url.rstrip('/')}/oauth/v2/token", data=dict(form))
    answer = json_body(response, dict, PLATFORM)
    access, refresh, life = answer.get("access_token"), answer.get("refresh_token"), answer.get("expires_in")
    if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
        raise InvalidAnswer("IdeaSoft's token answer has no access_token or refresh_token")
    if isinstance(life, bool) or not isinstance(life, int | float) or life <= 0:
        raise InvalidAnswer("IdeaSoft's token answer has no expires_in")
    return Tokens(access, refresh, now + timedelta(seconds=float(life)))


# Refreshes, one at a time per store and app in a process: rotating refresh tokens are single-use. Keyed by
# the process too, so a forked work horse never waits on a lock its parent held.
_REFRESHING: dict[tuple[int, str], threading.Lock] = {}
_REFRESHING_LOCK = threading.Lock()


def _refresh_lock(key: str) -> threading.Lock:
    with _REFRESHING_LOCK:
        return _REFRESHING.setdefault((os.getpid(), key), threading.Lock())


class _IdeasoftOutbound(Outbound):
    """Outbound with IdeaSoft's own words for a refusal (OAuth's `error`/`error_description`, the Admin
    API's `errorMessage`/`message` [UNSURE of its shape]) and a 429 without Retry-After waiting
    RATE_LIMIT_WAIT."""

    def _refused(self, method: str, url: str, response: httpx.Response) -> None:
        status = response.status_code
        if status == 429:
            wait = retry_after(response) if response.headers.get("Retry-After") else RATE_LIMIT_WAIT
            raise RateLimited(f"{PLATFORM} answered 429 (too many requests)", retry_after=wait)
        words = _words(response)
        if 400 <= status < 500 and words:
            category = "auth" if status in (401, 403) else "refused"
            raise Permanent(
                f"{PLATFORM} answered {status}: {words}", status=status, code=words, category=category
            )
        super()._refused(method, url, response)


def _words(response: httpx.Response) -> str:
    try:
        payload = loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return ""
    if not isinstance(payload, dict):
        return ""
    names = ("error", "error_description", "errorCode", "errorMessage", "message")
    texts = [
        str(payload[name]) for name in names if isinstance(payload.get(name), str | int) and payload[name]
    ]
    errors = payload.get("errors")
    if isinstance(errors, list):
        texts.extend(str(error.get("message")) for error in errors[:3] if isinstance(error, dict))
    return sanitised(": ".join(dict.fromkeys(texts)))


# -- webhooks ------------------------------------------------------------------------------------------


def read_webhook(headers: Mapping[str, str], body: bytes, secret: str, path: str = "") -> WebhookNotice:
    """An IdeaSoft delivery: `X-Ideashop-Hmac-Sha256` = base64(HMAC-SHA256(raw body, the app's client
    secret)) (docs/webhooks.md), checked in constant time before anything is read. The payload holds the
    changed fields and `id`: the subject is the order's id, the key a digest of the body (IdeaSoft sends no
    delivery id: the same change sent again has the same body). The topic travels in no documented header
    [UNSURE]: `X-Ideashop-Topic` where present, else "order"."""
    named = {name.lower(): value for name, value in headers.items()}
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    given = named.get(SIGNATURE.lower(), "").encode()
    if not secret or not hmac.compare_digest(expected, given):
        raise WebhookRefused(f"the {SIGNATURE} is missing or wrong")
    key = hashlib.sha256(body).hexdigest()
    topic = named.get("x-ideashop-topic", "order")[:100]
    if not topic.startswith("order"):
        return WebhookNotice(key, topic, "")
    try:
        raw = json.loads(body)
    except ValueError:
        raise WebhookRefused("the body is not JSON") from None
    order_id = raw.get("id") if isinstance(raw, dict) else None
    if isinstance(order_id, bool) or not isinstance(order_id, int | str) or not str(order_id).isdigit():
        return WebhookNotice(key, topic, "")
    return WebhookNotice(key, topic, str(order_id))


# -- the connector ---------------------------------------------------------------------------------------


class IdeasoftConnector:
    kind = "ideasoft"

    def __init__(
        self,
        base_url: str,
        credentials: Mapping[str, str],
        guard: Guard,
        *,
        tokens: TokenStore | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.client_id = credentials["ideasoft_client_id"]
        self._secret = credentials["ideasoft_client_secret"]
        # Until the orchestrator's store is wired, tokens kept in the credentials seed one in memory.
        seeded = tokens_from(credentials)
        self.store: TokenStore | None = tokens or (MemoryTokens(seeded) if seeded else None)
        self.http = _IdeasoftOutbound(
            guard, platform=PLATFORM, headers={"Accept": "application/json"}, transport=transport
        )
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # a seam: the tests move it
        self.key = hashlib.sha256(f"{self.base}\0{self.client_id}".encode()).hexdigest()
        self._tokens: Tokens | None = None

    def close(self) -> None:
        self.http.close()

    # -- orders --------------------------------------------------------------------------------------

    def find_order(self, reference: str, since: datetime | None = None) -> ShopOrder | None:
        """The order whose `referrer` is the reference: the list's referrer filter, sorted newest first and
        bounded by creation date when `since` is given; an exact match only."""
        params = {"referrer": reference}
        if since is not None:
            params["startCreatedAt"] = _day(since)
        found = next((raw for raw in self._orders(params) if raw.get("referrer") == reference), None)
        return parse_order(found) if found is not None else None

    def create_order(self, plan: ShopOrderPlan) -> ShopOrder:
        """`POST /api/orders` (the Store API, see the module's docstring [UNSURE]), then the order as the
        Admin API has it. A refusal is Permanent with IdeaSoft's words: nothing was made."""
        answer = self._call("POST", f"{self.base}/api/orders", json=order_body(plan))
        created = _id(answer)
        with created_already(PLATFORM):
            order = self.get_order(created) if created else self.find_order(plan.reference)
        if order is None:
            raise InvalidAnswer(f"IdeaSoft said order {plan.reference} was created but does not list it")
        if order.reference != plan.reference:
            raise Permanent(
                f"IdeaSoft created order {order.shop_id} without the hub's reference in its referrer field: "
                "the hub could not find it again; check the order in the IdeaSoft panel",
                category="refused",
            )
        if order.total != plan.total:
            log.warning(
                "IdeaSoft order %s: total %s, the marketplace's %s", order.shop_id, order.total, plan.total
            )
        return order

    def settle_total(self, shop_id: str, total: Decimal) -> ShopOrder:
        """Nothing to do when IdeaSoft's total is the marketplace's. Otherwise Permanent: which of the
        order's amounts `PUT /admin-api/orders/{id}` may change is not documented [UNSURE], so the seller
        corrects the order in the panel and the hub shows both totals."""
        order = self.get_order(shop_id)
        if order.total == total:
            return order
        raise Permanent(
            f"IdeaSoft's order {shop_id} comes to {order.total}, the marketplace's to {total}: correct the "
            "order in the IdeaSoft panel",
            category="refused",
        )

    def get_order(self, shop_id: str) -> ShopOrder:
        return parse_order(self._order(shop_id))

    def set_status(self, shop_id: str, status: str) -> ShopOrder:
        """`PUT /admin-api/orders/{id}` with `status` (notes §8.2), unless the order has it; read back."""
        order = self.get_order(shop_id)
        if order.status == status:
            return order
        moved = parse_order(self._put(shop_id, {"status": status}))
        if moved.status != status:
            raise InvalidAnswer(
                f"IdeaSoft accepted status {status} for order {shop_id}, still {moved.status}"
            )
        return moved

    def set_tracking(self, shop_id: str, carrier: str, code: str, link: str) -> ShopOrder:
        """`PUT /admin-api/orders/{id}` with `shippingTrackingCode` and, for a carrier IdeaSoft has a code
        for, `shippingProviderCode` (notes §8.2 [UNSURE of the codes, PROVIDERS]). IdeaSoft has no field for
        a tracking link: it makes one from the provider (force_tracking_link is unavailable)."""
        order = self.get_order(shop_id)
        provider, _ = by_name(PROVIDERS, carrier) or ("", "")
        if order.tracking_number == code and (not provider or order.carrier == CARRIER_NAMES[provider]):
            return order
        fields = {"shippingTrackingCode": code, **({"shippingProviderCode": provider} if provider else {})}
        shipped = parse_order(self._put(shop_id, fields))
        if shipped.tracking_number != code:
            raise InvalidAnswer(
                f"IdeaSoft accepted tracking code {code} for order {shop_id} but does not show it"
            )
        return shipped

    def add_note(self, shop_id: str, note: str) -> None:
        """`POST /admin-api/order_user_notes` (notes §8.2) with `{order: {id}, note}` [UNSURE of the field
        names: the mirror's body is a broken $ref], unless the order has the same note already
        (`GET /admin-api/order_user_notes?order=`), so asking again after a lost answer adds nothing."""
        text = note[:NOTE_LENGTH]
        listed = self._call("GET", f"{self.base}/admin-api/order_user_notes?{urlencode({'order': shop_id})}")
        if isinstance(listed, list) and any(isinstance(e, dict) and e.get("note") == text for e in listed):
            return
        body = {"order": {"id": int(shop_id)}, "note": text}
        self._call("POST", f"{self.base}/admin-api/order_user_notes", json=body)

    def changed_since(self, since: datetime) -> Sequence[ShopOrder]:
        """The hub's orders IdeaSoft changed after `since`: the orders created in the last CHANGED_DAYS
        days, newest first, kept when `updatedAt` is after `since` (see the module's docstring)."""
        start = self.clock() - timedelta(days=CHANGED_DAYS)
        changed = []
        for raw in self._orders({"startCreatedAt": _day(start)}):
            if not str(raw.get("referrer") or "").startswith(REFERENCE_PREFIX):
                continue
            order = parse_order(raw)
            if order.modified_at is None or order.modified_at > since - timedelta(seconds=1):
                changed.append(order)
        return changed

    def statuses(self) -> Mapping[str, str]:
        """IdeaSoft's statuses are a fixed enum (orders.json): no call lists them."""
        return dict(STATUSES)

    def subscribe(self, callback_url: str, secret: str) -> str:
        """`POST /admin-api/client_webhooks` for order/create and order/update at `callback_url`, active
        (status 1), for each topic that has no active subscription there yet (docs/webhooks.md). IdeaSoft
        signs with the app's client secret: `secret` is not sent. It deletes a subscription after failed
        deliveries, so asking again re-creates what is gone."""
        listed = self._call("GET", f"{self.base}/admin-api/client_webhooks?limit=100")
        held = {
            entry.get("topic")
            for entry in (listed if isinstance(listed, list) else [])
            if isinstance(entry, dict) and entry.get("address") == callback_url and entry.get("status") == 1
        }
        for topic in TOPICS:
            if topic not in held:
                body = {"topic": topic, "address": callback_url, "status": 1}
                self._call("POST", f"{self.base}/admin-api/client_webhooks", json=body)
        return f"IdeaSoft sends {' and '.join(TOPICS)} to {callback_url}"

    # -- reading ---------------------------------------------------------------------------------------

    def _order(self, shop_id: str) -> dict[str, Any]:
        if not shop_id.isdigit():
            raise Permanent(f"IdeaSoft has no order {shop_id}", category="refused")
        answer = self._call("GET", f"{self.base}/admin-api/orders/{shop_id}")
        if not isinstance(answer, dict):
            raise InvalidAnswer("IdeaSoft answered an order with something that is not an object")
        return answer

    def _put(self, shop_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        answer = self._call("PUT", f"{self.base}/admin-api/orders/{shop_id}", json=dict(fields))
        if not isinstance(answer, dict):
            raise InvalidAnswer("IdeaSoft answered an update with something that is not an order")
        return answer

    def _orders(self, params: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        """Orders, newest first (`sort=-id`), a page at a time (limit/page, orders.json)."""
        for page in range(1, MAX_PAGES + 1):
            query = urlencode({**params, "sort": "-id", "limit": str(PAGE), "page": str(page)})
            rows = self._call("GET", f"{self.base}/admin-api/orders?{query}")
            if not isinstance(rows, list):
                raise InvalidAnswer("IdeaSoft's order list is not a list")
            yield from (row for row in rows if isinstance(row, dict))
            if len(rows) < PAGE:
                return
        log.warning(
            "IdeaSoft %s: more than %d orders in a listing, the rest not read", self.base, MAX_PAGES * PAGE
        )

    # -- calling ---------------------------------------------------------------------------------------

    def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        """One call with the Bearer token, its JSON answer; a 401 gets one refresh and the call once more."""
        tokens = self._current()
        try:
            response = self._send(method, url, tokens, **kwargs)
        except Permanent as error:
            if error.status != 401:
                raise
            response = self._send(method, url, self._refreshed(tokens), **kwargs)
        if not response.content:
            return None
        try:
            return loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise InvalidAnswer("IdeaSoft answered with something that is not JSON") from None

    def _send(self, method: str, url: str, tokens: Tokens, **kwargs: Any) -> httpx.Response:
        self.http.headers["Authorization"] = f"Bearer {tokens.access_token}"
        return self.http.request(method, url, **kwargs)

    def _current(self) -> Tokens:
        """The tokens in use, renewed a margin before they run out."""
        tokens = self._tokens or (self.store.load() if self.store is not None else None)
        if tokens is None:
            raise Permanent(f"IdeaSoft is not connected: {NOT_CONNECTED}", category="auth")
        self._tokens = tokens
        if tokens.expires_at - REFRESH_MARGIN <= self.clock():
            return self._refreshed(tokens)
        return tokens

    def _refreshed(self, used: Tokens) -> Tokens:
        """New tokens for the ones `used` (grant_type=refresh_token), saved through the store: refresh tokens
        rotate, so the old pair stops working. One refresh at a time per store in a process; a refusal
        (invalid_grant: another process refreshed first) reloads the store once before giving up."""
        with _refresh_lock(self.key), self.store.hold() if self.store is not None else nullcontext():
            kept = self.store.load() if self.store is not None else None
            if kept is not None and kept.refresh_token != used.refresh_token and self._fresh(kept):
                self._tokens = kept  # another thread or process renewed them meanwhile
                return kept
            try:
                renewed = self._refresh(used.refresh_token)
            except Permanent as error:
                if error.status not in (400, 401):
                    raise
                kept = self.store.load() if self.store is not None else None
                if kept is None or kept.refresh_token == used.refresh_token:
                    raise Permanent(
                        f"IdeaSoft refused to renew the connection ({error.code or error}): {NOT_CONNECTED}",
                        category="auth",
                    ) from None
                if self._fresh(kept):
                    self._tokens = kept
                    return kept
                try:
                    renewed = self._refresh(kept.refresh_token)
                except Permanent as again:
                    raise Permanent(
                        f"IdeaSoft refused to renew the connection ({again.code or again}): {NOT_CONNECTED}",
                        category="auth",
                    ) from None
            if self.store is not None:
                self.store.save(renewed)
            self._tokens = renewed
            return renewed

    def _fresh(self, tokens: Tokens) -> bool:
        return tokens.expires_at - REFRESH_MARGIN > self.clock()

    def _refresh(self, refresh_token: str) -> Tokens:
        form = {
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "client_secret": self._secret,
            "refresh_token": refresh_token,
        }
        self.http.headers.pop("Authorization", None)
        return _token_call(self.http, self.base, form, self.clock())


# -- the order, both ways ----------------------------------------------------------------------------------


def order_body(plan: ShopOrderPlan) -> dict[str, Any]:
    """The order as `POST /api/orders` gets it [UNSURE: field names from the order fields IdeaSoft's
    webhooks list (docs/webhooks.md), the items' and addresses' from the Admin API's OrderItem and
    address resources]: the hub's reference as `referrer`, each line by SKU at its VAT-inclusive unit price
    with its VAT rate, the shipping charge with VAT, and the marketplace's total as `finalAmount`."""
    charge = plan.shipping_charge
    shipping = charge.net + charge.tax
    return {
        "referrer": plan.reference,
        "status": plan.status,
        "paymentStatus": "success",  # the customer paid the marketplace
        "paymentTypeName": plan.marketplace,
        "currency": plan.currency,
        "customerFirstname": plan.billing.first_name,
        "customerSurname": plan.billing.last_name,
        "customerEmail": plan.customer_email,
        "customerPhone": plan.billing.phone or plan.shipping.phone,
        "shippingAmount": str(shipping),
        "finalAmount": str(plan.total),
        "orderItems": [_item(line) for line in plan.lines],
        "shippingAddress": _address(plan.shipping),
        "billingAddress": _address(plan.billing),
    }


def _item(line: ShopLine) -> dict[str, Any]:
    unit = line.total / line.quantity
    exact = unit.quantize(CENT, rounding=ROUND_HALF_UP)
    price = exact if exact * line.quantity == line.total else unit.quantize(UNIT, rounding=ROUND_HALF_UP)
    return {
        "productSku": line.sku,
        "productName": line.name,
        "productQuantity": line.quantity,
        "productPrice": str(price),
        "productTax": format(line.vat_rate.normalize(), "f"),
    }


def _address(address: Address) -> dict[str, str]:
    return {
        "firstname": address.first_name,
        "surname": address.last_name,
        "country": address.country,
        "location": address.city,
        "subLocation": address.district,
        "address": address.address1,
        "zipCode": address.postcode,
        "phoneNumber": address.phone,
        "companyName": address.company,
    }


def parse_order(raw: Mapping[str, Any]) -> ShopOrder:
    """An Admin API order: id, status, referrer, updatedAt, the shipping fields and finalAmount."""
    order_id = raw.get("id")
    if isinstance(order_id, bool) or not isinstance(order_id, int | str) or not str(order_id).isdigit():
        raise InvalidAnswer("IdeaSoft answered with an order that has no id")
    referrer = str(raw.get("referrer") or "")
    provider = str(raw.get("shippingProviderCode") or "")
    return ShopOrder(
        shop_id=str(order_id),
        status=str(raw.get("status") or ""),
        reference=referrer if referrer.startswith(REFERENCE_PREFIX) else "",
        modified_at=_moment(raw.get("updatedAt")),
        tracking_number=str(raw.get("shippingTrackingCode") or ""),
        carrier=CARRIER_NAMES.get(provider, provider),
        total=_amount(raw.get("finalAmount")),
    )


def _id(answer: Any) -> str:
    order_id = answer.get("id") if isinstance(answer, dict) else None
    return str(order_id) if isinstance(order_id, int) and not isinstance(order_id, bool) else ""


def _moment(value: Any) -> datetime | None:
    """IdeaSoft's times, ISO 8601 with the offset ("2022-07-26T10:59:04+03:00", docs/webhooks.md)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidAnswer("IdeaSoft's order updatedAt cannot be read") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=ISTANBUL)).astimezone(UTC)


def _day(moment: datetime) -> str:
    return moment.astimezone(ISTANBUL).strftime(DAY)


def _amount(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount.quantize(CENT) if amount.is_finite() else None
