"""The live Orders page, the order detail, the error queue, Sync now and imports: over HTTP, with a real
Redis for the change feed and the job queue."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask
from redis import Redis

from blueprints.orders.colors import BLACK, WHITE, contrast, parse, text_on, tint
from connectors.base import ConnectorError
from connectors.http import Guard, Outbound, recording
from connectors.registry import DEFAULT_STATUS_COLORS
from extensions import db
from models import (
    Account,
    ActionState,
    Backfill,
    BackfillState,
    Integration,
    Order,
    OrderAction,
    OrderEvent,
    OrderNotice,
    StatusColor,
    TransferState,
)
from models.base import utcnow
from sync import actions, backfill, changefeed
from tests.conftest import (
    Client,
    make_account,
    make_action,
    make_import,
    make_integration,
    make_line,
    make_order,
    running_app,
)
from tests.pipeline import configure, cycle, free_port
from tests.sandbox_server import Sandbox
from tests.stack import redis_server

ROW = re.compile(r'<tr id="order-(\d+)"')


@pytest.fixture
def app(redis_url: str) -> Iterator[Flask]:
    Redis.from_url(redis_url).flushdb()
    with running_app(REDIS_URL=redis_url, ORDERS_PAGE_SIZE=3) as app:
        yield app


def shown(page: str) -> list[int]:
    return [int(found) for found in ROW.findall(page)]


@contextmanager
def queries() -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)


def version_of(page: str) -> int:
    match = re.search(r'id="live-version" name="v" value="(\d+)"', page)
    assert match, "no live version on the page"
    return int(match.group(1))


# -- Filters, search, counts, pages ----------------------------------------------------------------


def test_filters_search_and_counts(seller: Client, integration: Integration, account: Account) -> None:
    second = make_integration(account, name="Second")
    make_order(integration, 1, status="Shipped", tracking_number="TR123")
    make_order(integration, 2, transfer_state=TransferState.ERROR, error_category="shop_refused")
    make_order(second, 3, customer_name="Zeynep Kaya", ordered_at=datetime(2026, 11, 25, 9, tzinfo=UTC))

    assert shown(seller.get(f"/orders?integration={second.id}").get_data(as_text=True)) == [3]
    assert len(shown(seller.get("/orders?status=Shipped").get_data(as_text=True))) == 1
    page = seller.get("/orders?transfer=error").get_data(as_text=True)
    assert len(shown(page)) == 1 and "Customer 2" in page
    assert len(shown(seller.get("/orders?q=kaya").get_data(as_text=True))) == 1
    assert len(shown(seller.get("/orders?q=TR123").get_data(as_text=True))) == 1
    assert len(shown(seller.get("/orders?q=10400000002").get_data(as_text=True))) == 1
    assert shown(seller.get("/orders?from=2026-11-24&to=2026-11-26").get_data(as_text=True)) == [
        db.session.scalar(sa.select(Order.id).where(Order.customer_name == "Zeynep Kaya"))
    ]

    # Counts per status and transfer state, over the other filters.
    page = seller.get(f"/orders?integration={integration.id}").get_data(as_text=True)
    assert re.search(r'data-count="status-Shipped">Shipped <b>1</b>', page)
    assert re.search(r'data-count="status-Created">Created <b>1</b>', page)
    assert re.search(r'data-count="transfer-error">Error <b>1</b>', page)
    # The filter is in the URL of every count, so it survives a click.
    assert f"integration={integration.id}&amp;status=Shipped" in page


def test_the_marketplace_filter_and_badge(seller: Client, integration: Integration, account: Account) -> None:
    page = seller.get("/orders").get_data(as_text=True)
    assert 'name="marketplace"' not in page  # one marketplace: nothing to choose, nothing to tell apart
    n11 = make_integration(account, name="N11 store", marketplace_kind="n11")
    make_order(integration, 1)
    on_n11 = make_order(n11, 2)
    other = make_integration(make_account("other@example.com"), name="Theirs", marketplace_kind="n11")
    make_order(other, 3)

    page = seller.get("/orders?marketplace=n11").get_data(as_text=True)
    assert shown(page) == [on_n11.id]
    assert '<option value="n11" selected>N11</option>' in page
    assert '<span class="badge marketplace marketplace-n11">N11</span>' in page
    assert len(shown(seller.get("/orders?marketplace=trendyol").get_data(as_text=True))) == 1
    page = seller.get("/orders?marketplace=etsy").get_data(as_text=True)
    assert "Unknown marketplace “etsy”" in page and len(shown(page)) == 2
    assert "marketplace-trendyol" in page and "marketplace-n11" in page


def test_bad_filters_are_named_and_ignored(seller: Client, integration: Integration) -> None:
    make_order(integration, 1)
    other = make_integration(make_account("other@example.com"), name="Theirs")
    page = seller.get(f"/orders?status=Lost&transfer=x&from=yesterday&integration={other.id}").get_data(
        as_text=True
    )
    assert "Unknown status “Lost”" in page and "Unknown transfer state “x”" in page
    assert "is not a date" in page and "That integration is not yours" in page
    assert len(shown(page)) == 1


def test_keyset_pages_show_every_order_once(seller: Client, integration: Integration) -> None:
    orders = [make_order(integration, number) for number in range(1, 8)]
    seen: list[int] = []
    url = "/orders"
    while url:
        page = seller.get(url).get_data(as_text=True)
        seen += shown(page)
        older = re.search(r'href="([^"]+)" rel="next"', page)
        url = older.group(1).replace("&amp;", "&") if older else ""
    assert seen == sorted((order.id for order in orders), reverse=True)


def test_pages_of_a_chosen_size_there_and_back(seller: Client, integration: Integration) -> None:
    orders = [make_order(integration, number) for number in range(1, 61)]
    newest_first = sorted((order.id for order in orders), reverse=True)

    def walk(url: str, rel: str) -> list[list[int]]:
        pages = []
        while url:
            page = seller.get(url, follow_redirects=True).get_data(as_text=True)
            pages.append(shown(page))
            link = re.search(rf'href="([^"]+)" rel="{rel}"', page)
            url = link.group(1).replace("&amp;", "&") if link else ""
        return pages

    there = walk("/orders?size=25", "next")
    assert [len(page) for page in there] == [25, 25, 10]
    assert [order_id for page in there for order_id in page] == newest_first
    last = f"/orders?size=25&before={there[1][-1]}"
    back = walk(last, "prev")
    assert back == there[::-1]  # the same pages, read back towards the newest
    newest = seller.get(f"/orders?size=25&after={there[1][0]}")
    assert newest.headers["Location"] == "/orders?size=25"  # back on top: the first page itself
    page = seller.get("/orders?size=7").get_data(as_text=True)
    assert "orders per page" in page and len(shown(page)) == 3  # the usual size (ORDERS_PAGE_SIZE here)


# -- Live ------------------------------------------------------------------------------------------


def test_a_quiet_poll_answers_from_redis_without_a_query(seller: Client, integration: Integration) -> None:
    make_order(integration, 1)
    version = version_of(seller.get("/orders").get_data(as_text=True))
    assert version > 0  # the commit above was published
    with queries() as statements:
        response = seller.get(f"/orders/changes?v={version}&shown=1", headers={"HX-Request": "true"})
    assert response.status_code == 204 and response.get_data() == b""
    assert statements == []
    order_id = db.session.scalar(sa.select(Order.id))
    with queries() as statements:
        assert seller.get(f"/orders/{order_id}/live?v={version}").status_code == 204
    assert statements == []


def test_a_poll_brings_changed_new_and_gone_rows(seller: Client, integration: Integration) -> None:
    first = make_order(integration, 1)
    leaving = make_order(integration, 2)
    page = seller.get("/orders?status=Created").get_data(as_text=True)
    version = version_of(page)
    first.status = "Picking"  # leaves the Created filter
    leaving.customer_name = "Renamed"
    db.session.commit()
    newcomer = make_order(integration, 3)
    ids = "&".join(f"shown={order_id}" for order_id in shown(page))
    answer = seller.get(f"/orders/changes?status=Created&v={version}&{ids}&order={leaving.id}").get_data(
        as_text=True
    )
    assert f'<tr id="order-{first.id}" hx-swap-oob="delete">' in answer
    assert re.search(rf'<tr id="order-{leaving.id}" class="[^"]*changed"', answer) and "Renamed" in answer
    assert 'hx-swap-oob="afterbegin:#orders-body"' in answer and f'id="order-{newcomer.id}"' in answer
    assert re.search(rf'value="{leaving.id}" aria-label="[^"]*" checked', answer)  # ticked stays ticked
    assert version_of(answer) > version and 'id="order-counts"' in answer


def test_a_page_too_far_behind_reloads(seller: Client, integration: Integration, redis_url: str) -> None:
    make_order(integration, 1)
    Redis.from_url(redis_url).set(f"hub:changes:{integration.account_id}:floor", 50)
    response = seller.get("/orders/changes?v=3")
    assert response.headers.get("HX-Refresh") == "true"


def test_polls_need_a_signed_in_seller(client: Client, integration: Integration) -> None:
    response = client.get("/orders/changes?v=0", headers={"HX-Request": "true"})
    assert response.status_code == 401 and "HX-Redirect" in response.headers
    assert client.get("/orders/changes?v=0").status_code == 302


# -- Colour coding ----------------------------------------------------------------------------------


def test_row_tint_and_badge_colours_follow_the_settings(seller: Client, integration: Integration) -> None:
    make_order(integration, 1, status="Shipped")
    db.session.add(StatusColor(integration_id=integration.id, status="Shipped", color="#112233"))
    configure(integration, status_color_coding=True, row_color_coding=False, color_coding_rate=40)
    page = seller.get("/orders").get_data(as_text=True)
    assert f'class="badge status st-{integration.id}-Shipped"' in page
    assert f"tint-{integration.id}-Shipped" not in page
    sheet = re.search(r'href="(/orders/colors\.css\?v=\w+)"', page)
    assert sheet
    css = seller.get(sheet.group(1)).get_data(as_text=True)
    assert f".badge.st-{integration.id}-Shipped{{background-color:#112233;color:#ffffff}}" in css

    configure(integration, status_color_coding=False, row_color_coding=True)
    page = seller.get("/orders").get_data(as_text=True)
    assert f"tint-{integration.id}-Shipped" in page and f"st-{integration.id}-Shipped" not in page
    css = seller.get(re.search(r'href="(/orders/colors\.css\?v=\w+)"', page).group(1)).get_data(  # type: ignore[union-attr]
        as_text=True
    )
    tinted = tint(parse("#112233"), 40)
    assert f"tr.tint-{integration.id}-Shipped>td{{background-color:#{bytes(tinted).hex()}" in css
    assert ".st-" not in css  # badges off: no badge colours


@pytest.mark.parametrize("rate", [0, 10, 30, 50, 70, 100])
def test_text_on_every_colour_stays_readable(rate: int) -> None:
    colors = [
        *DEFAULT_STATUS_COLORS.values(),
        "#777777",
        "#767676",
        "#ffff00",
        "#0000ff",
        "#000000",
        "#ffffff",
    ]
    for color in colors:
        background = tint(parse(color), rate)
        assert contrast(background, text_on(background)) >= 4.5, (color, rate)
    assert text_on(parse("#000000")) == WHITE and text_on(parse("#ffffff")) == BLACK


# -- Bulk actions and the detail page ----------------------------------------------------------------


def test_bulk_transfer_retry_and_ignore(seller: Client, integration: Integration) -> None:
    configure(integration, auto_transfer=False)
    waiting = make_order(integration, 1)
    failed = make_order(integration, 2, transfer_state=TransferState.ERROR, error_category="shop_refused")
    done = make_order(integration, 3, transfer_state=TransferState.TRANSFERRED, shop_id="9")
    make_action(failed)

    response = seller.post("/orders/bulk", data={"action": "ignore", "order": [waiting.id], "reason": " "})
    assert response.status_code == 302
    db.session.expire_all()
    assert waiting.transfer_state == TransferState.WAITING  # no reason: nothing changed
    assert "Write why" in seller.get("/orders").get_data(as_text=True)

    seller.post("/orders/bulk", data={"action": "transfer", "order": [waiting.id, done.id]})
    seller.post("/orders/bulk", data={"action": "retry", "order": [failed.id]})
    db.session.expire_all()
    kinds = {(a.order_id, a.kind, a.state) for a in db.session.scalars(sa.select(OrderAction))}
    assert (waiting.id, "transfer", ActionState.PENDING) in kinds
    assert (
        failed.id,
        "transfer",
        ActionState.PENDING,
    ) in kinds and failed.transfer_state == TransferState.WAITING
    assert not any(order_id == done.id for order_id, _, _ in kinds)

    seller.post(
        "/orders/bulk", data={"action": "ignore", "order": [waiting.id, done.id], "reason": "Test order"}
    )
    db.session.expire_all()
    assert waiting.transfer_state == TransferState.IGNORED and waiting.ignored_reason == "Test order"
    assert done.transfer_state == TransferState.TRANSFERRED
    page = seller.get("/orders").get_data(as_text=True)
    assert "Ignore: 1 of 2 orders." in page and "1 could not be" in page
    transfer_action = db.session.scalars(
        sa.select(OrderAction).where(OrderAction.order_id == waiting.id)
    ).one()
    assert transfer_action.state == ActionState.SUPERSEDED


def test_detail_shows_both_sides_lines_vat_shipment_and_history(
    seller: Client, integration: Integration
) -> None:
    order = make_order(
        integration,
        1,
        status="Shipped",
        transfer_state=TransferState.TRANSFERRED,
        shop_id="77",
        shop_status="completed",
        carrier="Yurtiçi Kargo",
        tracking_number="YK1",
        shipment_barcode="733",
        package_number="PK9",
        tracking_link="https://kargo.example/YK1",
        total=Decimal("139.90"),
    )
    make_line(order, name="Tişört", unit_price=Decimal("110.00"), vat_rate=Decimal("10"))
    db.session.add(
        OrderEvent(
            order_id=order.id,
            kind="received",
            summary="new package: Created",
            payload={"identityNumber": "••••••••••01"},
        )
    )
    db.session.commit()
    page = seller.get(f"/orders/{order.id}").get_data(as_text=True)
    for text in (
        "Customer 1",
        "Tişört",
        "110.00",
        "10.00",
        "29.90",
        "139.90",
        "Yurtiçi Kargo",
        "YK1",
        "733",
        "PK9",
        "https://kargo.example/YK1",
        "#77",
        "Completed",  # the shop status, by the name the shop gives it
        "new package: Created",
        "••01",
    ):
        assert text in page, text

    # Push status again: an action queued, shown on the page that answers the HTMX post.
    answer = seller.post(f"/orders/{order.id}/push", htmx=True).get_data(as_text=True)
    assert 'id="order-live"' in answer and "Status to the shop" in answer and "Queued" in answer
    assert (
        db.session.scalar(sa.select(OrderAction.kind).where(OrderAction.order_id == order.id))
        == "shop_status"
    )


def test_ignoring_one_order_needs_a_reason(seller: Client, integration: Integration) -> None:
    order = make_order(integration, 1)
    answer = seller.post(f"/orders/{order.id}/ignore", data={"reason": ""}, htmx=True).get_data(as_text=True)
    assert "Write why this order is ignored" in answer
    db.session.expire_all()
    assert order.transfer_state == TransferState.WAITING
    seller.post(f"/orders/{order.id}/ignore", data={"reason": "duplicate"})
    db.session.expire_all()
    assert order.transfer_state == TransferState.IGNORED and order.ignored_reason == "duplicate"
    seller.post(f"/orders/{order.id}/transfer")  # Transfer now takes it back
    db.session.expire_all()
    assert order.transfer_state == TransferState.WAITING and order.ignored_reason is None


# -- The error queue ---------------------------------------------------------------------------------


def test_error_queue_groups_by_cause_and_integration_and_retries(
    seller: Client, account: Account, integration: Integration
) -> None:
    unknown = [
        make_order(
            integration,
            number,
            transfer_state=TransferState.ERROR,
            error_category="unknown_product",
            error_reason=f"No product with SKU X{number}.",
        )
        for number in (1, 2, 3)
    ]
    refused = make_order(
        integration,
        4,
        transfer_state=TransferState.ERROR,
        error_category="shop_refused",
        error_reason="Invalid email",
    )
    other = make_integration(account, name="Second shop")
    elsewhere = make_order(
        other, 5, transfer_state=TransferState.ERROR, error_category="unknown_product", error_reason="SKU Y"
    )
    make_order(integration, 6)
    due = utcnow() + timedelta(minutes=5)
    make_action(unknown[0])
    make_action(refused, "shop_status", ActionState.PENDING, attempts=2, next_attempt_at=due)
    page = seller.get("/orders/errors").get_data(as_text=True)
    # One row per cause on one integration, the largest first, with its count, meaning and fix.
    keys = re.findall(r'class="error-group" id="errors-([\w-]+)"', page)
    assert keys == [
        f"{integration.id}-unknown_product",
        f"{integration.id}-shop_refused",
        f"{other.id}-unknown_product",
    ]
    assert "3 orders" in page and "Unknown product" in page and "No product with SKU X2." in page
    assert "Check the product on the Products page" in page and 'href="/products"' in page
    assert '<td class="number">8</td>' in page and '<td class="number">2</td>' in page
    assert "Customer 6" not in page
    assert 'id="nav-errors"' in page and ">5<" in page  # the navigation's badge

    # One integration's queue, as its General page and the Integration List link to it.
    page = seller.get(f"/orders/errors?integration={other.id}").get_data(as_text=True)
    assert re.findall(r'class="error-group" id="errors-([\w-]+)"', page) == [f"{other.id}-unknown_product"]

    # Retry the whole group: the three orders of the first integration, not the second's.
    retry = f"/orders/errors/{integration.id}/unknown_product/retry"
    assert seller.post(retry, data={"csrf_token": "wrong"}).status_code == 400
    assert seller.post(f"/orders/errors/{integration.id}/nonsense/retry", data={}).status_code == 404
    # Drawn with two orders in the group, a third came in since: nothing is done unseen.
    answer = seller.post(retry, data={"seen": "2"}, follow_redirects=True).get_data(as_text=True)
    assert "This group changed since you looked: 3 orders now." in answer
    db.session.expire_all()
    assert {order.transfer_state for order in unknown} == {TransferState.ERROR}
    seller.post(retry, data={"seen": "3"})
    db.session.expire_all()
    assert {order.transfer_state for order in unknown} == {TransferState.WAITING}
    assert elsewhere.transfer_state == TransferState.ERROR and refused.transfer_state == TransferState.ERROR

    # Ignore a group: only with a reason.
    ignore = f"/orders/errors/{other.id}/unknown_product/ignore"
    answer = seller.post(ignore, data={"reason": " ", "seen": "1"}, follow_redirects=True).get_data(
        as_text=True
    )
    assert "Write why" in answer
    db.session.expire_all()
    assert elsewhere.transfer_state == TransferState.ERROR
    seller.post(ignore, data={"reason": "sold out, refunded", "seen": "1"})
    db.session.expire_all()
    assert elsewhere.transfer_state == TransferState.IGNORED
    assert elsewhere.ignored_reason == "sold out, refunded"
    page = seller.get("/orders/errors").get_data(as_text=True)
    assert re.findall(r'class="error-group" id="errors-([\w-]+)"', page) == [f"{integration.id}-shop_refused"]


def test_another_accounts_group_cannot_be_touched(seller: Client) -> None:
    stranger = make_integration(make_account("stranger@example.com"), name="Theirs")
    theirs = make_order(stranger, 1, transfer_state=TransferState.ERROR, error_category="auth")
    assert seller.post(f"/orders/errors/{stranger.id}/auth/retry").status_code == 404
    db.session.expire_all()
    assert theirs.transfer_state == TransferState.ERROR


def test_general_page_says_when_the_integration_has_errors_or_failing_pulls(
    seller: Client, integration: Integration
) -> None:
    page = seller.get(f"/integrations/{integration.id}/general").get_data(as_text=True)
    assert 'id="integration-errors"' not in page and 'id="pull-error"' not in page
    make_order(integration, 1, transfer_state=TransferState.ERROR, error_category="auth")
    integration.last_pull_error, integration.last_pull_error_category = "401 Unauthorized", "auth"
    db.session.commit()
    page = seller.get(f"/integrations/{integration.id}/general").get_data(as_text=True)
    assert "1 order of this integration is in error." in page
    assert f'href="/orders/errors?integration={integration.id}"' in page
    assert 'id="pull-error"' in page and "Keys refused" in page


# -- The Integration List, Sync now, imports ---------------------------------------------------------


def test_integration_list_shows_pulls_orders_today_and_errors(
    seller: Client, integration: Integration
) -> None:
    integration.last_pull_at = utcnow() - timedelta(minutes=1)
    integration.next_pull_at = utcnow() + timedelta(minutes=1)
    db.session.commit()
    make_order(integration, 1, ordered_at=utcnow())
    make_order(integration, 2, ordered_at=utcnow(), transfer_state=TransferState.ERROR)
    make_order(integration, 3, ordered_at=utcnow() - timedelta(days=3))  # imported, say: not today
    page = seller.get("/integrations").get_data(as_text=True)
    row = page[page.index(f'id="integration-{integration.id}"') :]
    numbers = re.findall(r'<td data-label="[^"]*" class="number">(?:<a[^>]*>)?(\d+)', row)
    assert numbers[:2] == ["2", "1"]  # orders today (not the one of three days ago), errors open


def test_sync_now_queues_the_cycle_and_the_row_follows_it(
    seller: Client, integration: Integration, redis_url: str
) -> None:
    answer = seller.post(f"/integrations/{integration.id}/sync", htmx=True).get_data(as_text=True)
    assert "Syncing…" in answer and "every 1s" in answer
    from rq import Queue

    queue = Queue("pipeline", connection=Redis.from_url(redis_url))
    assert queue.job_ids == [f"sync-{integration.id}"]
    seller.post(f"/integrations/{integration.id}/sync", htmx=True)  # twice: still one job
    assert queue.job_ids == [f"sync-{integration.id}"]


def test_import_refuses_a_range_outside_the_window(seller: Client, integration: Integration) -> None:
    today = datetime.now(UTC).date()
    for start, end in (
        (today - timedelta(days=120), today),
        (today, today + timedelta(days=2)),
        (today, today - timedelta(days=2)),
        ("", ""),
    ):
        response = seller.post(
            f"/integrations/{integration.id}/import", data={"start": str(start), "end": str(end)}
        )
        assert response.status_code == 422, (start, end)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Backfill)) == 0


def test_an_import_reads_the_range_and_reports(hub: Integration, sandbox: Sandbox, seller: Client) -> None:
    configure(hub, notify_new_orders=True)
    for _ in range(5):
        sandbox.order()
    today = datetime.now(ZoneInfo("Europe/Istanbul")).date()  # the panel's days, not UTC's
    response = seller.post(
        f"/integrations/{hub.id}/import", data={"start": str(today - timedelta(days=2)), "end": str(today)}
    )
    assert response.status_code == 302
    run = db.session.scalars(sa.select(Backfill)).one()
    assert run.state == BackfillState.QUEUED
    queued: list[OrderAction] = []
    assert backfill.run(run.id, queued.extend) is None  # ended
    db.session.expire_all()
    assert run.state == BackfillState.DONE and run.progress == 100 and run.new == 5
    assert len(queued) == 5  # their transfers, for the workers
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OrderNotice)) == 0  # past orders: no news
    fragment = seller.get(f"/integrations/{hub.id}/import/{run.id}").get_data(as_text=True)
    assert (
        'value="100"' in fragment and "5 new, 0 updated, 0 errors" in fragment and "every 1s" not in fragment
    )

    again = Backfill(account_id=hub.account_id, integration_id=hub.id, start=run.start, end=run.end)
    db.session.add(again)
    db.session.commit()
    backfill.run(again.id, queued.extend)
    db.session.expire_all()
    assert again.new == 0 and db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 5


def test_an_import_waits_for_a_running_sync(hub: Integration, sandbox: Sandbox) -> None:
    hub.pull_lease_until = utcnow() + timedelta(minutes=1)
    run = make_import(hub)
    assert backfill.run(run.id, lambda actions: None) == backfill.BUSY_WAIT
    assert run.state == BackfillState.QUEUED


# -- Tenant isolation ------------------------------------------------------------------------------


def test_every_order_route_keeps_to_the_account(seller: Client, integration: Integration) -> None:
    mine = make_order(integration, 1)
    theirs_integration = make_integration(make_account("other@example.com"), name="Theirs")
    theirs = make_order(
        theirs_integration,
        2,
        customer_name="Their customer",
        transfer_state=TransferState.ERROR,
        error_category="shop_refused",
    )
    run = Backfill(
        account_id=theirs_integration.account_id,
        integration_id=theirs_integration.id,
        start=utcnow(),
        end=utcnow(),
    )
    db.session.add(run)
    db.session.commit()

    assert seller.get(f"/orders/{theirs.id}").status_code == 404
    assert seller.get(f"/orders/{theirs.id}/live").status_code == 404
    for action in ("transfer", "retry", "ignore", "push"):
        assert seller.post(f"/orders/{theirs.id}/{action}", data={"reason": "x"}).status_code == 404
    seller.post("/orders/bulk", data={"action": "ignore", "order": [theirs.id], "reason": "x"})
    seller.post("/orders/bulk", data={"action": "retry", "order": [theirs.id]})
    db.session.expire_all()
    assert theirs.transfer_state == TransferState.ERROR
    assert "Their customer" not in seller.get("/orders").get_data(as_text=True)
    assert "Their customer" not in seller.get("/orders/errors").get_data(as_text=True)
    answer = seller.get(f"/orders/changes?v=0&shown={mine.id}").get_data(as_text=True)
    assert "Their customer" not in answer
    assert f"-{theirs_integration.id}-" not in seller.get("/orders/colors.css").get_data(as_text=True)
    for path in (
        f"/integrations/{theirs_integration.id}/row",
        f"/integrations/{theirs_integration.id}/import",
        f"/integrations/{theirs_integration.id}/import/{run.id}",
    ):
        assert seller.get(path).status_code == 404, path
    assert seller.post(f"/integrations/{theirs_integration.id}/sync").status_code == 404


def test_order_routes_need_the_csrf_token(seller: Client, integration: Integration) -> None:
    order = make_order(integration, 1)
    assert seller.post(f"/orders/{order.id}/push", csrf=False).status_code == 400
    assert (
        seller.post("/orders/bulk", data={"action": "retry", "order": [order.id]}, csrf=False).status_code
        == 400
    )
    assert seller.post(f"/integrations/{integration.id}/sync", csrf=False).status_code == 400


def test_the_worker_publishes_its_changes_too(hub: Integration, sandbox: Sandbox, seller: Client) -> None:
    version = version_of(seller.get("/orders").get_data(as_text=True))
    sandbox.order()
    cycle(hub)  # ingest and transfer, as the worker runs them
    answer = seller.get(f"/orders/changes?v={version}").get_data(as_text=True)
    assert 'hx-swap-oob="afterbegin:#orders-body"' in answer and "Transferred" in answer


def test_the_order_page_poll_redraws_only_for_its_own_order(seller: Client, integration: Integration) -> None:
    order = make_order(integration, 1)
    other = make_order(integration, 2)
    page = seller.get(f"/orders/{order.id}").get_data(as_text=True)
    version = int(re.search(r'id="order-version" name="v" value="(\d+)"', page).group(1))  # type: ignore[union-attr]
    other.customer_name = "Changed elsewhere"
    db.session.commit()
    answer = seller.get(f"/orders/{order.id}/live?v={version}").get_data(as_text=True)
    assert 'id="order-live"' not in answer and 'id="order-version"' in answer
    newer = int(re.search(r'value="(\d+)"', answer).group(1))  # type: ignore[union-attr]
    assert newer > version
    order.status = "Picking"
    db.session.commit()
    answer = seller.get(f"/orders/{order.id}/live?v={newer}").get_data(as_text=True)
    assert '<div id="order-live" hx-swap-oob="true">' in answer and "Picking" in answer


def test_counts_from_before_a_change_are_asked_for_again(
    app: Flask, seller: Client, integration: Integration
) -> None:
    app.config["ORDER_COUNTS_MAX_AGE"] = 60
    order = make_order(integration, 1)
    version = version_of(seller.get("/orders").get_data(as_text=True))  # counted: Created 1
    order.status = "Shipped"
    db.session.commit()
    answer = seller.get(f"/orders/changes?v={version}&shown={order.id}").get_data(as_text=True)
    assert 'data-count="status-Created">Created <b>1</b>' in answer  # reused, within the minute
    delay = re.search(r'hx-get="/orders/counts" hx-trigger="load delay:(\d+)ms"', answer)
    assert delay and 0 < int(delay.group(1)) <= 60_000
    app.config["ORDER_COUNTS_MAX_AGE"] = 0  # the minute is over
    fresh = seller.get("/orders/counts").get_data(as_text=True)
    assert 'data-count="status-Shipped">Shipped <b>1</b>' in fresh and "load delay" not in fresh


def test_an_action_claimed_and_done_is_announced(
    hub: Integration, sandbox: Sandbox, seller: Client, redis_url: str
) -> None:
    configure(hub, auto_transfer=False)
    sandbox.order()
    cycle(hub)
    order = db.session.scalars(sa.select(Order)).one()
    seller.post(f"/orders/{order.id}/transfer")
    action_id = db.session.scalar(sa.select(OrderAction.id))
    assert action_id is not None
    redis = Redis.from_url(redis_url)
    before = changefeed.version(redis, hub.account_id)
    actions.run(action_id)
    feed = changefeed.since(redis, hub.account_id, before)
    assert feed.order_ids == [order.id] and feed.version >= before + 2  # claimed, then done


def test_changes_made_while_redis_is_away_are_announced_later() -> None:
    port = free_port()
    with running_app(REDIS_URL=f"redis://127.0.0.1:{port}/0"):
        integration = make_integration(make_account())
        first = make_order(integration, 1).id  # Redis is not there yet: kept for the next commit
        with redis_server(port) as url:
            second = make_order(integration, 2).id
            feed = changefeed.since(Redis.from_url(url), integration.account_id, 0)
    assert feed.order_ids is not None and {first, second} <= set(feed.order_ids)


def test_an_import_stops_when_a_sync_takes_the_integration(
    app: Flask, hub: Integration, sandbox: Sandbox
) -> None:
    app.config["PULL_PAGE_SIZE"] = 2
    for _ in range(5):
        sandbox.order()
    run = make_import(hub)

    def sync_cycle_takes_over(_actions: list[OrderAction]) -> None:
        db.session.execute(sa.update(Integration).values(pull_lease_until=utcnow() + timedelta(minutes=5)))
        db.session.commit()

    backfill.run(run.id, sync_cycle_takes_over)
    db.session.expire_all()
    assert run.state == BackfillState.FAILED and "stopped" in (run.error or "")
    assert run.new == 2  # the first page, and no more


def test_an_order_on_its_way_to_the_shop_cannot_be_ignored(seller: Client, integration: Integration) -> None:
    order = make_order(integration, 1)
    make_action(order, state=ActionState.RUNNING)
    seller.post(f"/orders/{order.id}/ignore", data={"reason": "duplicate"})
    db.session.expire_all()
    assert order.transfer_state == TransferState.WAITING


def test_the_history_keeps_the_requests_out_without_secrets(
    hub: Integration, sandbox: Sandbox, seller: Client
) -> None:
    sandbox.order()
    cycle(hub)
    order = db.session.scalars(sa.select(Order)).one()
    calls = [
        call
        for event in db.session.scalars(
            sa.select(OrderEvent).where(OrderEvent.order_id == order.id, OrderEvent.kind == "request")
        )
        for call in event.payload or []
    ]
    created = [call for call in calls if call["method"] == "POST"]
    assert len(created) == 1 and created[0]["status"] == 201 and created[0]["body"]["line_items"]
    page = seller.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "POST /woocommerce/wp-json/wc/v3/orders → 201" in page
    for secret in ("ck_sandbox", "cs_sandbox", "sandbox-key", "sandbox-secret"):
        assert secret not in page


def test_keys_in_a_query_string_are_masked_in_the_history(sandbox: Sandbox) -> None:
    url = f"{sandbox.shop_url}/wp-json/wc/v3/orders?consumer_key=ck_live&consumer_secret=cs_live&page=2"
    outbound = Outbound(Guard(https_only=False, allowlist=frozenset({"127.0.0.1"})), platform="WooCommerce")
    with recording() as calls, contextlib.suppress(ConnectorError):
        outbound.request("GET", url)
    [call] = calls
    assert "ck_live" not in call["url"] and "cs_live" not in call["url"] and "page=2" in call["url"]
    assert call["status"] == 401


def test_sorted_by_a_column_and_paged_there_and_back(seller: Client, integration: Integration) -> None:
    totals = [Decimal(value) for value in ("50", "10", "30", "10", "70", "20", "60", "40")]
    orders = [make_order(integration, number, total=total) for number, total in enumerate(totals, 1)]
    # By total, then by id, the highest first: every order once, in that order, over pages of three.
    by_total = sorted(orders, key=lambda order: (order.total, order.id), reverse=True)
    seen, url = [], "/orders?sort=-total"
    while url:
        page = seller.get(url).get_data(as_text=True)
        seen += shown(page)
        link = re.search(r'href="([^"]+)" rel="next"', page)
        url = link.group(1).replace("&amp;", "&") if link else ""
    assert seen == [order.id for order in by_total]
    assert 'aria-sort="descending"' in seller.get("/orders?sort=-total").get_data(as_text=True)
    # The lowest first; a page back from the second page is the first again.
    first = shown(seller.get("/orders?sort=total").get_data(as_text=True))
    assert first == [order.id for order in by_total[::-1][:3]]
    second = shown(seller.get(f"/orders?sort=total&before={first[-1]}").get_data(as_text=True))
    assert second == [order.id for order in by_total[::-1][3:6]]
    back = seller.get(f"/orders?sort=total&after={second[0]}", follow_redirects=True)
    assert shown(back.get_data(as_text=True)) == first
    page = seller.get("/orders?sort=colour").get_data(as_text=True)
    assert "cannot be sorted by “colour”" in page and len(shown(page)) == 3


def test_a_deleted_shop_order_is_transferred_again_from_the_queue(
    seller: Client, integration: Integration
) -> None:
    order = make_order(
        integration, 1, transfer_state=TransferState.ERROR, error_category="shop_order_gone", shop_id="77"
    )
    make_action(order, "shop_status")
    page = seller.get("/orders/errors").get_data(as_text=True)
    assert "Shop order deleted" in page and "Transfer the order again" in page
    seller.post(f"/orders/errors/{integration.id}/shop_order_gone/transfer", data={"seen": "1"})
    db.session.expire_all()
    assert order.transfer_state == TransferState.WAITING and order.shop_id is None
    kinds = db.session.execute(sa.select(OrderAction.kind, OrderAction.state).order_by(OrderAction.id)).all()
    assert [tuple(row) for row in kinds] == [("shop_status", "superseded"), ("transfer", "pending")]
