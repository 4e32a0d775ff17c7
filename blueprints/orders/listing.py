"""The Orders page's query: filters from the URL, keyset pages, and the counts per status and transfer state.

Every query starts from the signed-in account's orders. Pages go newest first by id, so the next (older)
page is `id < the last id shown` and the previous (newer) one `id > the first id shown`, read upwards, on
an index (account, [filter column,] id): as fast on page 1,000 as on page 1.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from redis import Redis
from redis.exceptions import RedisError
from werkzeug.datastructures import MultiDict

from blueprints.params import parse_id
from connectors.registry import MARKETPLACES
from models import Integration, Order, TransferState
from sync.statuses import CanonicalStatus

SEARCH_LENGTH = 100
# The dates a filter can name; anything beyond is taken as the nearest of the two.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)
# How much of a value a message about it repeats.
SHOWN_LENGTH = 40
# The page sizes a seller can pick; the default is ORDERS_PAGE_SIZE.
PAGE_SIZES = (25, 50, 100, 200)
# The columns the list sorts by (`?sort=total`, `?sort=-total` the other way), besides the newest first
# (by id, the default). An order not read yet has no date: it sorts by when the hub first saw it.
SORTS: dict[str, sa.ColumnElement[Any]] = {
    "date": sa.func.coalesce(Order.ordered_at, Order.created_at),
    "total": Order.total.expression,
    "customer": sa.func.lower(Order.customer_name),
}


def _shown(value: str) -> str:
    return value if len(value) <= SHOWN_LENGTH else value[:SHOWN_LENGTH] + "…"


@dataclass(frozen=True)
class Filters:
    """What the seller asked to see; the URL holds it, so a filtered view can be bookmarked and shared."""

    integration: int | None = None
    marketplace: str | None = None  # a marketplace kind (connectors.registry)
    status: str | None = None
    transfer: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    q: str = ""
    before: int | None = None  # the keyset cursors: orders older than this id,
    after: int | None = None  # or newer than this one (a page back towards the newest)
    size: int | None = None  # orders per page, one of PAGE_SIZES; None: the hub's default
    sort: str | None = None  # a column of SORTS, "-" before it for the other way; None: newest first
    problems: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def parse(cls, args: MultiDict[str, str], integrations: set[int]) -> Filters:
        """Read the URL; a value that makes no sense is dropped with a message, the rest still applies."""
        problems = []

        def number(name: str) -> int | None:
            raw = args.get(name, "").strip()
            if not raw:
                return None
            if (found := parse_id(raw)) is not None:
                return found
            problems.append(
                str(_l("“%(value)s” is not a valid %(name)s; it is ignored.", value=_shown(raw), name=name))
            )
            return None

        def day(name: str) -> date | None:
            raw = args.get(name, "").strip()
            if not raw:
                return None
            try:
                found = date.fromisoformat(raw)
            except ValueError:
                problems.append(
                    str(_l("“%(value)s” is not a date (YYYY-MM-DD); it is ignored.", value=_shown(raw)))
                )
                return None
            # No order is older or newer than these; an open-ended 0001-01-01 or 9999-12-31 means the same
            # and would overflow once turned into a moment in the panel's time zone.
            return min(max(found, FIRST_DAY), LAST_DAY)

        integration = number("integration")
        if integration is not None and integration not in integrations:
            problems.append(str(_l("That integration is not yours; showing every integration.")))
            integration = None
        marketplace = args.get("marketplace", "").strip() or None
        if marketplace is not None and marketplace not in MARKETPLACES:
            problems.append(
                str(_l("Unknown marketplace “%(value)s”; it is ignored.", value=_shown(marketplace)))
            )
            marketplace = None
        status = args.get("status", "").strip() or None
        if status is not None and status not in {member.value for member in CanonicalStatus}:
            problems.append(str(_l("Unknown status “%(value)s”; it is ignored.", value=_shown(status))))
            status = None
        transfer = args.get("transfer", "").strip() or None
        if transfer is not None and transfer not in {member.value for member in TransferState}:
            problems.append(
                str(_l("Unknown transfer state “%(value)s”; it is ignored.", value=_shown(transfer)))
            )
            transfer = None
        size = number("size")
        if size is not None and size not in PAGE_SIZES:
            sizes = ", ".join(map(str, PAGE_SIZES))
            problems.append(str(_l("Show %(sizes)s orders per page; the usual size is used.", sizes=sizes)))
            size = None
        sort = args.get("sort", "").strip() or None
        if sort is not None and sort.removeprefix("-") not in SORTS:
            problems.append(
                str(_l("Orders cannot be sorted by “%(value)s”; newest first.", value=_shown(sort)))
            )
            sort = None
        date_from, date_to = day("from"), day("to")
        if date_from and date_to and date_to < date_from:
            problems.append(str(_l("The end date is before the start date; the dates are ignored.")))
            date_from = date_to = None
        before = number("before")
        return cls(
            integration=integration,
            marketplace=marketplace,
            status=status,
            transfer=transfer,
            date_from=date_from,
            date_to=date_to,
            # PostgreSQL refuses NUL in a text, and no order holds one.
            q=args.get("q", "").replace("\x00", "").strip()[:SEARCH_LENGTH],
            before=before,
            after=None if before is not None else number("after"),  # one cursor at a time
            size=size,
            sort=sort,
            problems=tuple(problems),
        )

    def args(self, **changes: Any) -> dict[str, Any]:
        """The URL arguments of this view, with `changes` applied (None drops an argument)."""
        values: dict[str, Any] = {
            "integration": self.integration,
            "marketplace": self.marketplace,
            "status": self.status,
            "transfer": self.transfer,
            "from": self.date_from.isoformat() if self.date_from else None,
            "to": self.date_to.isoformat() if self.date_to else None,
            "q": self.q or None,
            "before": self.before,
            "after": self.after,
            "size": self.size,
            "sort": self.sort,
        }
        values.update(changes)
        return {name: value for name, value in values.items() if value is not None}

    def page(self, **changes: Any) -> dict[str, Any]:
        """The URL arguments of another page of this view (`before` or `after` in `changes`)."""
        return self.args(**{"before": None, "after": None, **changes})

    def sorted_by(self, column: str) -> dict[str, Any]:
        """The arguments of this view sorted by `column`: the other way round if it already is."""
        current = (self.sort or "").removeprefix("-")
        turned = column if current != column or (self.sort or "").startswith("-") else f"-{column}"
        return self.page(sort=turned)

    def direction(self, column: str) -> str | None:
        """How the view is sorted by `column` (`aria-sort`), if it is."""
        if (self.sort or "").removeprefix("-") != column:
            return None
        return "descending" if (self.sort or "").startswith("-") else "ascending"

    @property
    def top(self) -> bool:
        """Whether this is the first page of the newest first, where new orders come in on top."""
        return self.before is None and self.after is None and self.sort is None

    @property
    def active(self) -> bool:
        return bool(self.args(before=None, after=None, size=None, sort=None))

    def without_facets(self) -> Filters:
        """The same view across every status and transfer state: what the counts are counted over."""
        return replace(
            self, status=None, transfer=None, before=None, after=None, size=None, sort=None, problems=()
        )


def conditions(account_id: int, filters: Filters, *, facets: bool = True) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = [Order.account_id == account_id]
    if filters.integration is not None:
        where.append(Order.integration_id == filters.integration)
    if filters.marketplace is not None:
        kind = Integration.account_id == account_id, Integration.marketplace_kind == filters.marketplace
        where.append(Order.integration_id.in_(sa.select(Integration.id).where(*kind)))
    if facets and filters.status is not None:
        where.append(Order.status == filters.status)
    if facets and filters.transfer is not None:
        where.append(Order.transfer_state == filters.transfer)
    zone = ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])
    if filters.date_from is not None:
        where.append(Order.ordered_at >= datetime.combine(filters.date_from, datetime.min.time(), zone))
    if filters.date_to is not None:
        end = datetime.combine(filters.date_to + timedelta(days=1), datetime.min.time(), zone)
        where.append(Order.ordered_at < end)
    if filters.q:
        term = filters.q
        pattern = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(
            sa.or_(
                Order.order_number == term,
                Order.package_id == term,
                Order.tracking_number == term,
                Order.customer_name.ilike(pattern, escape="\\"),
            )
        )
    return where


@dataclass(frozen=True)
class Page:
    orders: list[Order]  # newest first
    older: int | None  # the cursor of the next page towards the oldest (`before`), if there is one
    newer: int | None  # the cursor of the page back towards the newest (`after`), if there is one


def page(account_id: int, filters: Filters, size: int) -> Page:
    """One page of orders in the view's order, with the cursors of the pages on either side.

    The cursors are order ids whatever the sort: the page after order X holds the orders that sort after
    X's (value, id), a row-value comparison on the sort column and the id."""
    from extensions import db

    size = filters.size or size
    where = conditions(account_id, filters)
    column = SORTS[filters.sort.removeprefix("-")] if filters.sort else None
    # Keys in the list's order: descending by (value, id) for "-column" and the default, else ascending.
    descending = filters.sort is None or filters.sort.startswith("-")
    key = sa.tuple_(column, Order.id) if column is not None else Order.id

    def position(order_id: int) -> Any:
        if column is None:
            return order_id
        value = db.session.scalar(sa.select(column).where(Order.id == order_id))
        return sa.tuple_(sa.literal(value), sa.literal(order_id))

    def ordered(backwards: bool) -> list[sa.UnaryExpression[Any]]:
        keys = [column, Order.id] if column is not None else [Order.id]
        return [k.desc() if descending != backwards else k.asc() for k in keys]

    # A page back (`after`): the `size` orders just before the cursor, read backwards, then turned.
    backwards = filters.after is not None
    cursor = filters.after if backwards else filters.before
    if cursor is not None:
        there = position(cursor)
        where.append(key < there if descending != backwards else key > there)
    query = sa.select(Order).where(*where).order_by(*ordered(backwards)).limit(size + 1)
    rows = list(db.session.scalars(query))
    more = len(rows) > size  # beyond the page, in the direction read
    rows = rows[:size][::-1] if backwards else rows[:size]
    if not rows:
        return Page(rows, None, None)
    older = rows[-1].id if backwards or more else None
    newer = rows[0].id if (more if backwards else cursor is not None) else None
    return Page(rows, older, newer)


def matching(account_id: int, filters: Filters, order_ids: list[int]) -> list[Order]:
    """Which of these orders the view shows, newest first."""
    from extensions import db

    if not order_ids:
        return []
    where = [*conditions(account_id, filters), Order.id.in_(order_ids)]
    return list(db.session.scalars(sa.select(Order).where(*where).order_by(Order.id.desc())))


@dataclass(frozen=True)
class Counts:
    statuses: dict[str, int]
    transfers: dict[str, int]
    total: int
    # Counted before the latest change: the page asks again in this many milliseconds.
    refresh_in: int = 0


def counts(account_id: int, filters: Filters, redis: Redis, version: int) -> Counts:
    """Orders per status and per transfer state in the view (ignoring those two filters themselves).

    Counting a million orders takes a while, so the answer is kept in Redis: it is reused while the
    account's orders have not changed, and for at most ORDER_COUNTS_MAX_AGE seconds once they have (the
    page is then told when to ask again, so it ends up right even if nothing else changes).
    """
    base = filters.without_facets()
    key = (
        f"hub:counts:{account_id}:"
        + hashlib.sha1(json.dumps(base.args(), sort_keys=True).encode()).hexdigest()
    )
    max_age = current_app.config["ORDER_COUNTS_MAX_AGE"]
    try:
        cached = redis.get(key)
        if cached:
            stored = json.loads(cached)  # type: ignore[arg-type]
            age = time.time() - stored["at"]
            if stored["version"] == version or age < max_age:
                wait = 0 if stored["version"] == version else int((max_age - age) * 1000) + 1
                return Counts(stored["statuses"], stored["transfers"], stored["total"], wait)
    except (RedisError, ValueError, KeyError):
        pass  # Redis away, or a stored value from another version of the hub: count
    result = _count(account_id, base)
    stored = {
        "version": version,
        "at": time.time(),
        "statuses": result.statuses,
        "transfers": result.transfers,
        "total": result.total,
    }
    with contextlib.suppress(RedisError):
        redis.set(key, json.dumps(stored), ex=3600)
    return result


def _count(account_id: int, filters: Filters) -> Counts:
    from extensions import db

    statuses: dict[str, int] = {}
    transfers: dict[str, int] = {}
    total = 0
    rows = db.session.execute(
        sa.select(Order.status, Order.transfer_state, sa.func.count())
        .where(*conditions(account_id, filters, facets=False))
        .group_by(Order.status, Order.transfer_state)
    )
    for status, transfer, count in rows:
        statuses[status or ""] = statuses.get(status or "", 0) + count
        transfers[transfer] = transfers.get(transfer, 0) + count
        total += count
    return Counts(statuses, transfers, total)
