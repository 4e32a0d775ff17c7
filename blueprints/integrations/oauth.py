"""Connecting a shop on its own consent page (OAuth2 authorisation code: IdeaSoft).

The seller saves the app's client id and secret with the integration, then presses *Connect*: the hub
sends them to the shop's consent page with a one-time `state` kept in their session, and the shop sends
them back to `/integrations/oauth/callback` with a code, which the hub trades for the shop's tokens
(kept encrypted on the integration, `shop_tokens_encrypted`, refreshed by the connector as they expire).
The state is the callback's CSRF check: a code that comes back without the state this session asked for
is not traded.
"""

from __future__ import annotations

import secrets

from flask import current_app, flash, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from blueprints.auth.forms import EmptyForm
from blueprints.integrations import bp
from blueprints.integrations.routes import _connection_problem, _get_integration
from connectors.base import ConnectorError
from connectors.factory import guard
from connectors.registry import OAuthFlow, Side
from extensions import db
from models import Integration
from models.base import utcnow
from models.crypto import encrypt_json

STATE_KEY = "oauth_state"


def redirect_uri() -> str:
    """Where the consent page sends the seller back: the hub's public address (the shop's app must name
    this one exactly)."""
    return current_app.config["PUBLIC_URL"].rstrip("/") + url_for("integrations.oauth_callback")


def _flow(integration: Integration) -> OAuthFlow:
    flow = integration.shop.oauth
    if flow is None:
        raise LookupError(f"{integration.shop.label} is not connected on a consent page")
    return flow


@bp.post("/<id:integration_id>/oauth")
def oauth_start(integration_id: int) -> ResponseReturnValue:
    """Send the seller to the shop's consent page, with a state only this session knows."""
    integration = _get_integration(integration_id, lock=False)
    edit = url_for("integrations.edit_integration", integration_id=integration.id)
    if not EmptyForm().validate_on_submit() or integration.shop.oauth is None:
        return redirect(edit)
    flow = _flow(integration)
    client_id = integration.credentials(Side.SHOP).get(flow.client_id, "")
    if not client_id:
        flash(_("Save the app's Client ID and Client secret first."), "error")
        return redirect(edit)
    state = secrets.token_urlsafe(24)
    session[STATE_KEY] = {"state": state, "integration": integration.id}
    return redirect(flow.authorize_url(integration.shop_base_url, client_id, redirect_uri(), state))


@bp.get("/oauth/callback")
def oauth_callback() -> ResponseReturnValue:
    """The consent page's answer: the code traded for the shop's tokens, if the state is this session's."""
    asked = session.pop(STATE_KEY, None)
    state = request.args.get("state", "")
    if not isinstance(asked, dict) or not state or not secrets.compare_digest(state, str(asked.get("state"))):
        flash(_("The shop's answer did not match a connection you started. Press Connect again."), "error")
        return redirect(url_for("integrations.list_integrations"))
    integration = _get_integration(int(asked["integration"]), lock=False)
    edit = url_for("integrations.edit_integration", integration_id=integration.id)
    code = request.args.get("code", "")
    if not code:
        flash(
            _(
                "%(shop)s did not connect the store (%(reason)s).",
                shop=integration.shop.label,
                reason=request.args.get("error", _("no code"))[:100],
            ),
            "error",
        )
        return redirect(edit)
    flow = _flow(integration)
    credentials = integration.credentials(Side.SHOP)
    try:
        tokens = flow.exchange_code(
            guard(),
            integration.shop_base_url,
            credentials.get(flow.client_id, ""),
            credentials.get(flow.client_secret, ""),
            code,
            redirect_uri(),
        )
    except ConnectorError as error:
        flash(_connection_problem(integration.shop.label, error), "error")
        return redirect(edit)
    integration.shop_tokens_encrypted = encrypt_json(flow.dump(tokens))
    integration.shop_connected_at = utcnow()
    db.session.commit()
    flash(_("%(shop)s is connected.", shop=integration.shop.label), "success")
    return redirect(edit)
