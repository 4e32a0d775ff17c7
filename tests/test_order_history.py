"""The order page as a seller reads it: the timeline of the order's way, and its history in the seller's
language, with what is technical behind "Technical details"."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from blueprints.orders.history import timeline
from extensions import db
from models import Account, Integration, Order, OrderEvent, TransferState
from sync.actions import CREATED
from tests.conftest import Client, join_sandbox, make_order
from tests.pipeline import cycle, order_for
from tests.sandbox_server import Sandbox

AT = datetime(2026, 11, 20, 12, tzinfo=UTC)


def text_of(page: str) -> str:
    """The page's text, tags out, spaces squeezed."""
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())


def test_an_order_s_way_and_history_in_turkish(seller: Client, account: Account, sandbox: Sandbox) -> None:
    integration = join_sandbox(account, sandbox)
    package = sandbox.order()
    cycle(integration)
    order = order_for(package)
    assert order.transfer_state == TransferState.TRANSFERRED

    english = text_of(seller.get(f"/orders/{order.id}").get_data(as_text=True))
    assert f"created in the shop as #{order.shop_id} (Processing)" in english
    assert "Transfer to the shop queued (setting: Automatic E-commerce Order Transfer)" in english

    account.language = "tr"
    db.session.commit()
    turkish = text_of(seller.get(f"/orders/{order.id}").get_data(as_text=True))
    # The way so far: ordered and in the shop (with its number), the rest not yet.
    assert re.search(
        rf"Sipariş verildi tamam [\d.]+ [\d:]+ Mağazada tamam [\d.]+ [\d:]+ #{order.shop_id}", turkish
    )
    assert "Onaylandı henüz değil" in turkish and "Teslim edildi henüz değil" in turkish
    # The history in Turkish, the shop's status by its Turkish name, the setting by its name.
    assert f"mağazada #{order.shop_id} olarak oluşturuldu (Hazırlanıyor)" in turkish
    assert "Mağazaya aktarım sıraya alındı" in turkish
    assert "created in the shop" not in turkish and "queued" not in turkish
    # The calls made are there, for whoever wants them, behind the technical details.
    assert "Sipariş Merkezi platformu çağırdı" in turkish
    assert "Teknik ayrıntılar" in turkish and "POST /woocommerce/wp-json/wc/v3/orders → 201" in turkish


def test_an_error_says_what_to_do_and_keeps_the_platform_s_words_for_the_details(
    seller: Client, account: Account, integration: Integration
) -> None:
    reason = "POST https://shop.example.com/wp-json/wc/v3/orders answered 401: woocommerce_rest_cannot_create"
    order = make_order(integration, transfer_state="error", error_category="auth", error_reason=reason)
    account.language = "tr"
    db.session.commit()
    page = seller.get(f"/orders/{order.id}").get_data(as_text=True)
    start = page.index('id="order-error"')
    error = text_of(page[page.index(">", start) + 1 : page.index("</div>", start)])
    assert "Anahtarlar reddedildi." in error
    assert "entegrasyon sayfasında yeniden girin" in error
    # The platform's own answer is not translated: it is there, but as a technical detail.
    assert error.endswith(f"Teknik ayrıntılar {reason}")


def test_a_line_written_before_wordings_were_kept_is_shown_as_written(
    seller: Client, integration: Integration
) -> None:
    order = make_order(integration)
    db.session.add(OrderEvent(order=order, kind="sent", summary="shop status pending → processing"))
    db.session.commit()
    assert "shop status pending → processing" in text_of(
        seller.get(f"/orders/{order.id}").get_data(as_text=True)
    )


def received(order: Order, status: str, minutes: int) -> OrderEvent:
    return OrderEvent(
        order_id=order.id,
        kind="received",
        summary="package updated: %(native)s",
        params={"native": status, "status": status},
        created_at=AT + timedelta(minutes=minutes),
    )


def test_the_timeline_reads_when_each_step_was_reached(app: Flask, integration: Integration) -> None:
    order = make_order(
        integration, status="Shipped", shop_id="5001", carrier="Yurtiçi Kargo", tracking_number="YK123"
    )
    order.transfer_state = TransferState.TRANSFERRED
    events = [
        received(order, "Created", 0),
        OrderEvent(
            order_id=order.id, kind="sent", summary=CREATED, params={"shop_id": "5001"}, created_at=AT
        ),
        received(order, "Invoiced", 30),  # Picking was skipped: Approved counts from here
        received(order, "Shipped", 90),
    ]
    with app.test_request_context():  # the steps' names are in the request's language
        steps = {step.name: step for step in timeline(order, events)}
    assert [name for name, step in steps.items() if step.reached] == [
        "Ordered",
        "In the shop",
        "Approved",
        "Shipped",
    ]
    assert steps["In the shop"].detail == "#5001" and steps["In the shop"].at == AT
    assert steps["Approved"].at == AT + timedelta(minutes=30)
    assert steps["Shipped"].at == AT + timedelta(minutes=90)
    assert steps["Shipped"].detail == "Yurtiçi Kargo YK123"
    assert not steps["Delivered"].reached and steps["Delivered"].at is None


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        (["Created", "Cancelled"], ["Ordered", "Cancelled"]),
        # Cancelled after it shipped: the way shows how far it got first.
        (["Created", "Picking", "Shipped", "Cancelled"], ["Ordered", "Approved", "Shipped", "Cancelled"]),
        (["Created", "Shipped", "UnDelivered"], ["Ordered", "Approved", "Shipped", "Undelivered"]),
        (["Created", "Delivered", "Returned"], ["Ordered", "Approved", "Shipped", "Delivered", "Returned"]),
    ],
)
def test_an_ending_closes_the_way_after_the_steps_reached(
    app: Flask, integration: Integration, history: list[str], expected: list[str]
) -> None:
    order = make_order(integration, status=history[-1])
    events = [received(order, status, minutes) for minutes, status in enumerate(history)]
    with app.test_request_context():
        steps = timeline(order, events)
    assert [step.name for step in steps] == expected
    assert [step.ended for step in steps] == [False] * (len(expected) - 1) + [True]
    assert steps[-1].at == AT + timedelta(minutes=len(history) - 1)
