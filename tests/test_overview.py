"""Orders > Overview: the landing page's figures and charts, counted from real orders and actions,
scoped to the account, and live like the Orders page."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from redis import Redis

from extensions import db
from models import ActionState, Integration, TransferState
from models.base import utcnow
from tests.conftest import Client, make_account, make_action, make_integration, make_order, running_app
from tests.test_dashboard import queries


@pytest.fixture
def app(redis_url: str) -> Iterator[Flask]:
    Redis.from_url(redis_url).flushdb()
    with running_app(REDIS_URL=redis_url) as app:
        yield app


def chart(page: str, name: str) -> dict[str, Any]:
    found = re.search(rf'id="chart-{name}"[^>]*data-chart="([^"]+)"', page)
    assert found, name
    data: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return data


def figure(page: str, name: str) -> str:
    found = re.search(rf'id="figure-{name}">(.*?)</article>', page, re.S)
    assert found, name
    return re.sub(r"<[^>]+>|\s+", " ", found.group(1))


def test_signing_in_lands_on_the_overview(client: Client, account: object) -> None:
    answer = client.post("/login", data={"email": "seller@example.com", "password": "correct horse"})
    assert client.get(answer.headers["Location"]).headers["Location"] == "/orders/overview"


def test_the_figures_count_the_accounts_orders(seller: Client, integration: Integration) -> None:
    now = utcnow()
    make_order(integration, 1, ordered_at=now)
    make_order(integration, 2, ordered_at=now - timedelta(hours=2))
    make_order(integration, 3, ordered_at=now - timedelta(days=3), status="Shipped")
    failed = make_order(
        integration, 4, ordered_at=now - timedelta(days=20), transfer_state=TransferState.ERROR
    )
    done = make_order(integration, 5, ordered_at=now - timedelta(days=30), status="Delivered")
    done.created_at = now - timedelta(seconds=90)
    make_action(done, state=ActionState.DONE, finished_at=now - timedelta(seconds=60))
    make_action(failed, finished_at=now - timedelta(hours=1))
    stranger = make_integration(make_account("other@example.com"), name="Theirs")
    make_order(stranger, 6, ordered_at=now)  # someone else's: counted nowhere here

    page = seller.get("/orders/overview").get_data(as_text=True)
    hours = chart(page, "hours")
    assert hours["type"] == "bar" and len(hours["labels"]) == 24
    [series] = hours["datasets"]
    assert series["label"] == "Trendyol" and sum(series["data"]) == 2
    [days] = chart(page, "days")["datasets"]
    assert len(days["data"]) == 14 and sum(days["data"]) == 3 and days["data"][-1] >= 1
    [errors] = chart(page, "errors")["datasets"]
    assert sum(errors["data"]) == 1
    assert "50% went through" in figure(page, "transfers") and "1 gave up" in figure(page, "transfers")
    assert "30 sec" in figure(page, "time")  # from arriving in the hub to the shop order
    assert " 1 " in figure(page, "errors") and " 3 " in figure(page, "to-ship")  # Created, not shipped
    assert 'id="overview-integration-' in page and "Theirs" not in page


def test_a_quiet_overview_poll_costs_no_query(seller: Client, integration: Integration) -> None:
    make_order(integration, 1, ordered_at=utcnow())
    page = seller.get("/orders/overview").get_data(as_text=True)
    version = int(re.search(r'id="overview-version" name="v" value="(\d+)"', page).group(1))  # type: ignore[union-attr]
    assert version > 0
    with queries() as statements:
        answer = seller.get(f"/orders/overview/live?v={version}", headers={"HX-Request": "true"})
    assert answer.status_code == 204 and statements == []
    make_order(integration, 2, ordered_at=utcnow())
    answer = seller.get(f"/orders/overview/live?v={version}", headers={"HX-Request": "true"})
    assert answer.status_code == 200
    [series] = chart(answer.get_data(as_text=True), "hours")["datasets"]
    assert sum(series["data"]) == 2


def test_the_overview_needs_a_signed_in_seller(client: Client) -> None:
    assert client.get("/orders/overview").headers["Location"].startswith("/login")
    assert client.get("/orders/overview/live?v=1", headers={"HX-Request": "true"}).status_code in (401, 302)
    db.session.remove()
