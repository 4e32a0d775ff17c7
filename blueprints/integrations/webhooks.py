"""The Webhooks tab: each side's webhooks registered from the panel (where its API allows), what arrived,
and the shop's own statuses read for the Statuses tab."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import flash, make_response, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from blueprints.auth.forms import EmptyForm
from blueprints.integrations import bp
from blueprints.integrations.routes import _connection_problem, _get_integration
from connectors.base import ConnectorError
from connectors.factory import shop_for
from connectors.registry import Side
from extensions import db, hx
from models import Integration, WebhookDelivery
from models.base import utcnow
from sync.pull import interval
from sync.webhooks import callback_url, register


@dataclass(frozen=True)
class Arrivals:
    """One side's deliveries over the last day."""

    received: int
    waiting: int
    left_to_pull: int
    last_at: datetime | None


def _arrivals(integration: Integration) -> dict[Side, Arrivals]:
    since = utcnow() - timedelta(days=1)
    rows = db.session.execute(
        sa.select(
            WebhookDelivery.side,
            sa.func.count(),
            sa.func.count().filter(WebhookDelivery.handled_at.is_(None)),
            sa.func.count().filter(WebhookDelivery.outcome == "left to the pull"),
            sa.func.max(WebhookDelivery.received_at),
        )
        .where(WebhookDelivery.integration_id == integration.id, WebhookDelivery.received_at >= since)
        .group_by(WebhookDelivery.side)
    ).all()
    found = {Side(row[0]): Arrivals(row[1], row[2], row[3], row[4]) for row in rows}
    return {side: found.get(side, Arrivals(0, 0, 0, None)) for side in Side}


def _page(integration: Integration, problems: dict[Side, str] | None = None, *, password: str = "") -> str:
    template = "integrations/_webhooks.html" if hx() else "integrations/webhooks.html"
    return render_template(
        template,
        integration=integration,
        arrivals=_arrivals(integration),
        problems=problems or {},
        form=EmptyForm(),
        urls={side: callback_url(integration, side) for side in Side} if integration.webhook_token else {},
        pull_seconds=int(interval(integration).total_seconds()),
        password=password,
    )


@bp.get("/<id:integration_id>/webhooks")
def webhooks(integration_id: int) -> ResponseReturnValue:
    return _page(_get_integration(integration_id))


@bp.post("/<id:integration_id>/webhooks")
def register_webhooks(integration_id: int) -> ResponseReturnValue:
    """Register (again) each side's webhooks through its platform's API: asking again is harmless, and
    reactivates a webhook the platform turned off after failed deliveries. No row lock is held while the
    platforms are called."""
    integration = _get_integration(integration_id, lock=False)
    if not EmptyForm().validate_on_submit():
        return _page(integration), 400
    problems = {
        side: _connection_problem(integration.kind(side).label, error)
        for side, error in register(integration).items()
    }
    if not hx():
        if problems:
            for problem in problems.values():
                flash(problem, "error")
        else:
            flash(_("Webhooks are registered."), "success")
        return redirect(url_for("integrations.webhooks", integration_id=integration.id))
    return _page(integration, problems)


@bp.post("/<id:integration_id>/webhooks/password")
def webhook_password(integration_id: int) -> ResponseReturnValue:
    """The password a platform that registers webhooks on request (Hepsiburada's ticket) is to send:
    the hub's own secret for the integration, shown only when the seller asks, in the answer to a POST
    (never in a page that stays in the history or a cache)."""
    integration = _get_integration(integration_id, lock=False)
    if not EmptyForm().validate_on_submit() or integration.webhook_token is None:
        return _page(integration), 400
    response = make_response(_page(integration, password=integration.webhook_secret()))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/<id:integration_id>/statuses/read")
def read_shop_statuses(integration_id: int) -> ResponseReturnValue:
    """Read the shop's own order statuses (its custom ones too) for the Statuses tab."""
    integration = _get_integration(integration_id, lock=False)
    if EmptyForm().validate_on_submit():
        try:
            with shop_for(integration) as shop:
                names = dict(shop.statuses())
        except ConnectorError as error:
            flash(_connection_problem(integration.shop.label, error), "error")
        else:
            if names:
                integration.shop_status_names = names
                integration.shop_statuses_read_at = utcnow()
                db.session.commit()
                flash(_("%(count)d statuses read from the shop.", count=len(names)), "success")
            else:
                flash(_("%(shop)s has a fixed set of statuses.", shop=integration.shop.label), "success")
    return redirect(url_for("integrations.statuses", integration_id=integration.id))
