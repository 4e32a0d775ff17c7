"""Where the platforms push their changes: one address per integration and side, no sign-in, no CSRF.

A delivery is proven first (a signature over the raw body, or the password or API key the hub
registered), before any of it is read; then kept in the inbox (`WebhookDelivery`, unique on the
platform's key, so a delivery sent again is kept once) and answered at once. A worker reads the order it
names from the platform and takes it through the same ingest and decision table as a pull
(`sync/webhooks.py`).

The answers: 200 for a delivery kept, sent again, or naming nothing the hub follows (a ping); 401 for a
wrong proof (the platform's retries and its failure count then tell the seller, and the integration
counts it); 404 for an address no integration has, or a side whose platform the hub takes no webhooks
from; 413 for a body past WEBHOOK_MAX_BYTES; 429 past WEBHOOK_RATE_LIMIT (deliveries taken, per address)
or WEBHOOK_REFUSED_LIMIT (refusals, per address and client): the address is not a secret, and someone
sending junk to it must not use up what the platform needs, nor write to the database at will.

The delivery is handed to RQ after the answer has gone (`call_on_close`): a slow Redis never makes a
platform wait, and a delivery Redis did not take is handed out by the tick's sweeper.
"""

from __future__ import annotations

import functools
import logging

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from flask_limiter.util import get_remote_address

from connectors.base import WebhookRefused
from connectors.registry import Side
from extensions import csrf, db, limiter
from jobs.tasks import hand_out_webhooks
from models import Integration, WebhookDelivery
from models.base import utcnow
from sync.webhooks import handed_out

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
log = logging.getLogger(__name__)


def _limit() -> str:
    return str(current_app.config["WEBHOOK_RATE_LIMIT"])


def _refused_limit() -> str:
    return str(current_app.config["WEBHOOK_REFUSED_LIMIT"])


def _address() -> str:
    args = request.view_args or {}
    return f"webhook:{args.get('token', '')}:{args.get('side', '')}"


def _sender() -> str:
    """One client at one address: a platform's addresses serve many sellers, so refusals one address
    draws (a deleted integration, a forger) must not cost the platform its deliveries to the others."""
    return f"{_address()}:{get_remote_address()}"


def _taken(response: Response) -> bool:
    return response.status_code == 200


def _refused(response: Response) -> bool:
    return response.status_code in (401, 404)


@bp.post("/<token>/<side>")
@bp.route("/<token>/<side>/<path:path>", methods=["POST", "PUT"])
@csrf.exempt
@limiter.limit(_limit, key_func=_address, deduct_when=_taken)
@limiter.limit(_refused_limit, key_func=_sender, deduct_when=_refused)
def receive(token: str, side: str, path: str = "") -> ResponseReturnValue:
    """A delivery at the side's address, or at a path under it (Hepsiburada calls `orders`,
    `lineitems/{id}/cancel`, `packages/{number}/intransit`… under the address it was given)."""
    if side not in tuple(Side) or len(token) > 64 or len(path) > 200:
        abort(404)
    integration = db.session.scalar(sa.select(Integration).where(Integration.webhook_token == token))
    if integration is None:
        abort(404)
    intake = integration.kind(Side(side)).webhooks
    if intake is None:
        abort(404)
    request.max_content_length = current_app.config["WEBHOOK_MAX_BYTES"]
    body = request.get_data(cache=False)
    if intake.secret_credential:
        secret = integration.credentials(Side(side)).get(intake.secret_credential, "")
    else:
        secret = integration.webhook_secret()
    try:
        notice = intake.read(dict(request.headers), body, secret, path)
    except WebhookRefused as refused:
        db.session.execute(
            sa.update(Integration)
            .where(Integration.id == integration.id)
            .values(webhooks_refused=Integration.webhooks_refused + 1, webhook_refused_at=utcnow())
        )
        db.session.commit()
        log.warning("webhook for integration %s (%s) refused: %s", integration.id, side, refused)
        return jsonify(error="the delivery's signature or key is wrong"), 401
    if intake.by_request is not None and integration.webhooks_at(Side(side)) is None:
        _first_delivery(integration, Side(side))
    # A paused integration takes its platforms' deliveries (so they do not count it as failing) and
    # does nothing with them: its first pull after it is switched on brings what changed.
    if not notice.subject or not integration.active:
        return jsonify(received=True)
    delivery = WebhookDelivery(
        integration_id=integration.id,
        side=side,
        key=notice.key[:128],
        topic=notice.topic[:100],
        subject=notice.subject[:64],
        received_at=utcnow(),
    )
    db.session.add(delivery)
    try:
        db.session.commit()
    except sa.exc.IntegrityError:
        db.session.rollback()  # sent before: kept once, and handled once
        return jsonify(received=True)
    response = jsonify(received=True)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    response.call_on_close(functools.partial(_hand_out, app, integration.id))
    return response


def _first_delivery(integration: Integration, side: Side) -> None:
    """A platform whose webhooks are set up on request (a ticket) has sent its first proven delivery:
    from now on the side counts as pushed (`sync.pull.interval`), as a registration through an API does."""
    column = getattr(Integration, f"{side}_webhooks_at")
    db.session.execute(
        sa.update(Integration)
        .where(Integration.id == integration.id, column.is_(None))
        .values(
            {
                f"{side}_webhooks": f"{integration.kind(side).label}: set up on request, delivering",
                f"{side}_webhooks_at": utcnow(),
            }
        )
    )
    db.session.commit()


def _hand_out(app: Flask, integration_id: int) -> None:
    """After the answer: the integration's deliveries to a worker, noted as handed out if Redis took them."""
    with app.app_context():
        try:
            now = utcnow()
            if hand_out_webhooks(integration_id):
                handed_out(integration_id, now)
        finally:
            db.session.remove()
