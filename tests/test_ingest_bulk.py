"""The ingest's bulk path for first-seen packages writes, row by row, what the ORM path writes."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, cast

import pytest
import sqlalchemy as sa

from connectors.base import MarketplaceOrder
from connectors.trendyol import parse_package
from extensions import db
from models import Order, OrderAction, OrderEvent, OrderLine, Product
from models.notification import OrderNotice
from sandbox.generator import CATALOGUE
from sandbox.state import World
from sync import changefeed
from sync import ingest as ingest_module
from sync.ingest import IngestResult, ingest
from sync.statuses import CANCELLATIONS
from tests.conftest import make_account, make_integration, running_app
from tests.pipeline import configure

# What two runs cannot share: ids (and the references built from them) and moments.
NOT_COMPARED = frozenset(
    {"id", "order_id", "origin_id", "reference", "created_at", "updated_at", "next_attempt_at"}
)
TABLES = (Order, OrderLine, OrderEvent, OrderAction, OrderNotice)
STATUSES = ("Created", "Awaiting", "Picking", "Shipped", "Cancelled", "Created", "UnSupplied", "Delivered")


@dataclasses.dataclass
class Written:
    rows: dict[str, list[dict[str, Any]]]  # every row of the order tables, by package, without ids
    actions: list[tuple[str, str]]  # the last page's actions, as the dispatch gets them: kind, package
    stock: list[int]  # the panel products' stock
    bulk: int = 0  # packages the bulk path wrote


def packages(statuses: Sequence[str], world: World | None = None) -> list[MarketplaceOrder]:
    """Sandbox packages in Trendyol's shape, one per status; every other one with a tracking number and
    an identity number (which the history masks)."""
    world = world or World(seed=5)
    made = []
    for index, status in enumerate(statuses):
        raw = world.create_package({"status": status})
        if index % 2:
            raw["cargoTrackingNumber"] = f"73000{index:05d}"
            raw["invoiceAddress"]["identityNumber"] = "12345678901"
        made.append(parse_package(raw))
    return made


def written(
    pages: Sequence[Sequence[MarketplaceOrder]], *, bulk: bool, announce: bool = True, **settings: Any
) -> Written:
    """Ingest the pages on a fresh schema, with the bulk path or without it, and read what was written."""
    with running_app(), pytest.MonkeyPatch.context() as patch:
        taken: list[int] = []
        announced: set[int] = set()
        insert_new = ingest_module._insert_new

        def counted(*args: Any) -> None:
            taken.append(len(args[2]))
            insert_new(*args)

        patch.setattr(changefeed, "publish", lambda _, changed, *__: announced.update(*changed.values()))
        patch.setattr(changefeed, "_missed", {})  # what earlier tests could not announce is not ours
        if bulk:
            patch.setattr(ingest_module, "_insert_new", counted)
        else:
            patch.setattr(ingest_module, "_bulk_plans", lambda *_: {})
        integration = make_integration(make_account())
        configure(integration, **settings)
        db.session.add_all(
            Product(account_id=integration.account_id, barcode=p.barcode, name=p.name, stock=10)
            for p in CATALOGUE
        )
        db.session.commit()
        result = IngestResult()
        for page in pages:
            result = ingest(integration, integration.settings.to_domain(), page, announce=announce)
            db.session.commit()
        assert announced == set(db.session.scalars(sa.select(Order.id)))  # the live pages hear of each
        assert all(action in db.session for action in result.actions)  # loaded, for the caller to change
        return Written(
            rows=_rows(),
            actions=[(action.kind, action.order.package_id) for action in result.actions],
            stock=list(db.session.scalars(sa.select(Product.stock).order_by(Product.id))),
            bulk=sum(taken),
        )


def _rows() -> dict[str, list[dict[str, Any]]]:
    package_of = dict(db.session.execute(sa.select(Order.id, Order.package_id)).tuples().all())
    rows = {}
    for model in TABLES:
        table = cast(sa.Table, model.__table__)
        owner = "id" if model is Order else "order_id"
        rows[table.name] = sorted(
            (
                {"package": package_of[row[owner]]}
                | {name: value for name, value in row.items() if name not in NOT_COMPARED}
                for row in db.session.execute(sa.select(table).order_by(table.c.id)).mappings()
            ),
            key=lambda row: row["package"],  # stable: within a package, in the order written
        )
    return rows


@pytest.mark.parametrize(
    ("settings", "announce"),
    [
        ({"approval_feedback": True, "notify_new_orders": True}, True),
        ({"auto_transfer": False, "approval_feedback": True, "notify_new_orders": True}, False),
        ({"notify_new_orders": False, "tracking_code_source": "shipment_barcode"}, True),
    ],
)
def test_first_seen_packages_are_written_as_the_orm_path_writes_them(
    settings: dict[str, Any], announce: bool
) -> None:
    page = packages(STATUSES)
    bulk = written([page], bulk=True, announce=announce, **settings)
    orm = written([page], bulk=False, announce=announce, **settings)
    # All but the packages already cancelled, which end at once the ORM way (`_cancelled_first`).
    assert bulk.bulk == len(page) - sum(package.status in CANCELLATIONS for package in page)
    assert bulk.rows == orm.rows and sorted(bulk.actions) == sorted(orm.actions)
    assert len(bulk.rows["orders"]) == len(page) and bulk.actions
    assert len(bulk.rows["order_notices"]) == (len(page) if announce and settings["notify_new_orders"] else 0)


def test_packages_whose_plan_moves_stock_go_the_orm_way() -> None:
    page = packages(STATUSES)
    bulk = written([page], bulk=True, approval_feedback=True, decrease_stock=True)
    orm = written([page], bulk=False, approval_feedback=True, decrease_stock=True)
    assert bulk.bulk == 0  # the rest move stock; the two cancelled ones end at once: all the ORM way
    assert bulk == orm
    assert any(row["kind"] == "stock" for row in bulk.rows["order_events"]) and min(bulk.stock) < 10


def test_a_page_of_new_known_split_and_repeated_packages_is_written_as_before() -> None:
    """The bulk path takes only packages that touch nothing else: an update, a split, a package twice on
    the page go the ORM way, beside the new ones, and the page comes out as before."""
    world = World(seed=5)
    first = packages(["Created", "Created", "Awaiting"], world)
    later = packages(["Created", "Picking", "Created"], world)
    paid = dataclasses.replace(
        first[2],
        status=later[0].status,
        native_status="Created",
        modified_at=first[2].modified_at + timedelta(minutes=5),
    )
    split = dataclasses.replace(
        first[1], package_id="split-1", origin_package_ids=(first[1].package_id,), lines=first[1].lines[:1]
    )
    second = [*later, later[0], paid, split]
    settings = {"approval_feedback": True, "notify_new_orders": True}
    bulk = written([first, second], bulk=True, **settings)
    orm = written([first, second], bulk=False, **settings)
    assert bulk.bulk == len(first) + 2  # the first page; of the second, the new packages seen once
    assert bulk.rows == orm.rows and bulk.stock == orm.stock
    # The page's actions in another order: the ORM way's packages are written before the bulk path's.
    assert sorted(bulk.actions) == sorted(orm.actions)
    assert {row["package_id"] for row in bulk.rows["orders"]} >= {"split-1", later[0].package_id}
