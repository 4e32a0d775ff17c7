"""Orders > Orders: the list, the Transfer and Retry actions (as outbox rows), tenant isolation, CSRF."""

from __future__ import annotations

import sqlalchemy as sa

from extensions import db
from models import ActionState, Integration, Order, OrderAction, TransferState
from tests.conftest import Client, make_account, make_action, make_integration, make_order


def actions_of(order: Order) -> list[tuple[str, str]]:
    return [
        (a.kind, a.state)
        for a in db.session.scalars(sa.select(OrderAction).where(OrderAction.order_id == order.id))
    ]


def test_lists_the_accounts_orders_only(seller: Client, integration: Integration) -> None:
    make_order(integration)
    other = make_integration(make_account("other@example.com"), name="Theirs")
    make_order(other, package_id="999", order_number="55555", customer_name="Someone Else")
    page = seller.get("/orders").get_data(as_text=True)
    assert "10400000001" in page and "Customer 1" in page
    assert "55555" not in page and "Someone Else" not in page


def test_transfer_queues_the_transfer(seller: Client, integration: Integration) -> None:
    integration.settings.auto_transfer = False
    db.session.commit()
    order = make_order(integration)
    assert "Transfer" in seller.get("/orders").get_data(as_text=True)
    assert seller.post(f"/orders/{order.id}/transfer").status_code == 302
    assert actions_of(order) == [("transfer", ActionState.PENDING)]
    seller.post(f"/orders/{order.id}/transfer")  # twice: still one
    assert actions_of(order) == [("transfer", ActionState.PENDING)]


def test_retry_runs_the_failed_steps_again(seller: Client, integration: Integration) -> None:
    order = make_order(
        integration,
        transfer_state=TransferState.ERROR,
        error_category="unknown_product",
        error_reason="No product with SKU X.",
    )
    make_action(order)
    assert "No product with SKU X." in seller.get("/orders").get_data(as_text=True)
    assert seller.post(f"/orders/{order.id}/retry").status_code == 302
    db.session.expire_all()
    assert actions_of(order) == [("transfer", ActionState.PENDING)]
    assert order.transfer_state == TransferState.WAITING and order.error_reason is None


def test_another_accounts_order_answers_404(seller: Client) -> None:
    other = make_integration(make_account("other@example.com"), name="Theirs")
    order = make_order(other)
    for action in ("transfer", "retry"):
        assert seller.post(f"/orders/{order.id}/{action}").status_code == 404
    assert actions_of(order) == []


def test_order_actions_need_the_csrf_token(seller: Client, integration: Integration) -> None:
    order = make_order(integration)
    for action in ("transfer", "retry"):
        assert seller.post(f"/orders/{order.id}/{action}", csrf=False).status_code == 400
    assert actions_of(order) == []
