"""Orders > Integration List: create, edit, (de)activate, delete, and the General settings page."""

from __future__ import annotations

from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy.exc import IntegrityError
from wtforms import Field

from blueprints.auth.forms import EmptyForm
from blueprints.integrations import bp
from blueprints.integrations.forms import (
    BLOCKED_ADDRESS,
    COLOR_FIELD_PREFIX,
    SECTIONS,
    STATUS_FIELD_PREFIX,
    ActiveForm,
    ColorsForm,
    IntegrationForm,
    Section,
    SectionForm,
    credential_field_name,
    status_map_form,
)
from blueprints.integrations.labels import field_label, value_label
from connectors.base import Blocked, ConnectorError
from connectors.factory import probe
from connectors.registry import KINDS, MARKETPLACES, Side
from extensions import db, hx, limiter
from jobs.tasks import settings_changed
from models import Account, Integration, IntegrationSettings
from models.integration import REPLACED
from sync.settings import (
    NEEDS_NOTIFICATION_EMAIL,
    NOTIFICATION_EMAIL_REASON,
    OWN_SHIPPING_ONLY,
    OWN_SHIPPING_REASON,
    violations,
    without,
    without_own_shipping,
)


@bp.before_request
@login_required
def require_login() -> None:
    """Every page of this blueprint needs a signed-in seller."""


@bp.app_context_processor
def change_labels() -> dict[str, object]:
    return {"field_label": field_label, "value_label": value_label}


def _account() -> Account:
    return current_user._get_current_object()


def _get_integration(integration_id: int, *, lock: bool = True) -> Integration:
    """The signed-in account's integration, or 404: another account's looks exactly like a missing one.

    A POST locks the row until it commits, so two saves cannot both pass the rules on the same snapshot
    (`lock=False`: a POST that changes nothing, and must not hold the row while it calls out).
    """
    query = sa.select(Integration).where(
        Integration.id == integration_id, Integration.account_id == _account().id
    )
    if request.method == "POST" and lock:
        query = query.with_for_update()
    integration = db.session.scalar(query)
    if integration is None:
        abort(404)
    return integration


@bp.get("")
def list_integrations() -> ResponseReturnValue:
    """Orders > Integration List."""
    from blueprints.integrations.activity import activities

    integrations = db.session.scalars(
        sa.select(Integration).where(Integration.account_id == _account().id).order_by(Integration.name)
    ).all()
    return render_template(
        "integrations/list.html",
        integrations=integrations,
        activities=activities(integrations),
        button_form=EmptyForm(),
    )


@bp.route("/new", methods=["GET", "POST"])
def create_integration() -> ResponseReturnValue:
    """Add an integration: a marketplace account joined to a shop."""
    form = IntegrationForm()
    if request.method == "GET":
        # The page again for another marketplace (the kind's select asks for it): its credential fields.
        if request.args.get("marketplace_kind") in MARKETPLACES:
            form.marketplace_kind.data = request.args["marketplace_kind"]
        form.name.data = request.args.get("name", "")[:120] or form.name.data
        form.marketplace_base_url.data = MARKETPLACES[form.marketplace_kind.data].default_base_url
    if form.is_submitted() and all(
        # Every check runs, so one submit shows every message at once.
        [form.validate(), _below_cap(form), _credentials_complete(form, None), _name_free(form, None)]
    ):
        integration = Integration(account_id=_account().id, settings=IntegrationSettings.defaults())
        _fill(integration, form)
        db.session.add(integration)
        if not _committed(form):
            return _render_form(form, None)
        flash(
            _("Integration “%(name)s” is added. Check its General settings.", name=integration.name),
            "success",
        )
        return redirect(url_for("integrations.general", integration_id=integration.id))
    return _render_form(form, None)


@bp.route("/<id:integration_id>/edit", methods=["GET", "POST"])
def edit_integration(integration_id: int) -> ResponseReturnValue:
    """Edit an integration's name, addresses, credentials and shipping agreement."""
    integration = _get_integration(integration_id)
    form = IntegrationForm(obj=integration)
    if request.method == "GET":
        for side in Side:
            stored = integration.credentials(side)
            for credential in integration.kind(side).credential_fields:
                if not credential.secret:
                    form[credential_field_name(side, credential)].data = stored.get(credential.name, "")
    # The kinds are fixed once orders may exist; the form shows them read-only.
    form.marketplace_kind.data = integration.marketplace_kind
    form.shop_kind.data = integration.shop_kind
    if form.is_submitted() and all(
        [form.validate(), _credentials_complete(form, integration), _name_free(form, integration)]
    ):
        _fill(integration, form)
        if not _committed(form):
            return _render_form(form, integration)
        flash(_("Integration “%(name)s” is saved.", name=integration.name), "success")
        return redirect(url_for("integrations.edit_integration", integration_id=integration.id))
    return _render_form(form, integration)


@bp.post("/connection")
@bp.post("/<id:integration_id>/connection")
@limiter.limit(lambda: current_app.config["CONNECTION_TEST_RATE_LIMIT"], key_func=lambda: str(_account().id))
def test_connection(integration_id: int | None = None) -> ResponseReturnValue:
    """Test connection: the form's address and keys (a blank secret: the stored one, as Save would keep
    it) tried against the marketplace and the shop, each answered in plain words. Nothing is saved."""
    integration = _get_integration(integration_id, lock=False) if integration_id is not None else None
    form = IntegrationForm()
    if integration is not None:
        form.marketplace_kind.data, form.shop_kind.data = integration.marketplace_kind, integration.shop_kind
    form.validate()
    results = [_tried(form, integration, side) for side in Side]
    return render_template("integrations/_connection.html", results=results)


def _tried(form: IntegrationForm, integration: Integration | None, side: Side) -> tuple[str, bool, str]:
    """(the platform's name, whether it answered, what to do) for one side of the form."""
    kind = KINDS[side].get(_kind_field(form, side).data)
    if kind is None:
        return (
            (_("Marketplace") if side is Side.MARKETPLACE else _("E-commerce site")),
            False,
            _("Choose a kind."),
        )
    address = _base_url_field(form, side)
    if address.errors:
        return kind.label, False, str(address.errors[0])
    stored = integration.credentials(side) if integration else {}
    moved = integration is not None and _host(getattr(integration, f"{side}_base_url")) != _host(address.data)
    credentials = {}
    for credential in kind.credential_fields:
        field = form.credential_field(side, credential)
        value = (field.data or "").strip()
        if field.errors:
            return kind.label, False, f"{credential.label}: {field.errors[0]}"
        if not value and credential.secret and not moved:
            value = stored.get(credential.name, "")
        if not value and credential.required:
            return kind.label, False, _("Enter %(field)s first.", field=credential.label)
        if value:
            credentials[credential.name] = value
    # A shop connected on its consent page is tried with the tokens it gave, while it is the same store.
    connected = integration.id if integration is not None and kind.oauth and not moved else None
    try:
        probe(side, kind.key, address.data.strip(), credentials, connected)
    except Blocked as error:
        return kind.label, False, BLOCKED_ADDRESS[error.reason] % {"hosts": ", ".join(kind.pinned_hosts)}
    except ConnectorError as error:
        return kind.label, False, _connection_problem(kind.label, error)
    return kind.label, True, _("Connected: %(platform)s accepted the address and keys.", platform=kind.label)


def _connection_problem(platform: str, error: ConnectorError) -> str:
    """A failed test in the seller's words, then the platform's (connector messages are short and safe)."""
    if error.category == "auth":
        lead = _("%(platform)s refused the keys. Check them and enter them again.", platform=platform)
    elif error.category == "rate_limited":
        lead = _("%(platform)s asks to slow down. Try again in a minute.", platform=platform)
    elif error.retryable:
        lead = _(
            "%(platform)s did not answer properly. Check the address, or try again later.", platform=platform
        )
    else:
        lead = _("%(platform)s refused the request. Check the address and the keys.", platform=platform)
    return f"{lead} ({error})"


@bp.route("/<id:integration_id>/statuses", methods=["GET", "POST"])
def statuses(integration_id: int) -> ResponseReturnValue:
    """The Statuses tab: the shop status for each order status, prefilled with the shop's defaults."""
    integration = _get_integration(integration_id)
    form_class = status_map_form(integration.shop_status_choices())
    current = integration.status_map()
    form = form_class(data={STATUS_FIELD_PREFIX + status.value: value for status, value in current.items()})
    if form.validate_on_submit():
        integration.change_status_map(form.status_map(), _account().email)
        db.session.commit()
        flash(_("Statuses are saved."), "success")
        return redirect(url_for("integrations.statuses", integration_id=integration.id))
    status = 422 if form.errors else 200
    return render_template("integrations/statuses.html", integration=integration, form=form), status


@bp.post("/<id:integration_id>/active")
def toggle_active(integration_id: int) -> ResponseReturnValue:
    """Switch an integration between active and passive."""
    integration = _get_integration(integration_id)
    form = ActiveForm()
    if not form.validate_on_submit():
        abort(400)
    active = form.active.data == "on"
    if integration.active != active:
        integration.log_change(_account().email, "active", integration.active, active)
        integration.active = active
        db.session.commit()
    if hx():
        from blueprints.integrations.activity import row

        return row(integration)
    return redirect(url_for("integrations.list_integrations"))


@bp.route("/<id:integration_id>/delete", methods=["GET", "POST"])
def delete_integration(integration_id: int) -> ResponseReturnValue:
    """Delete an integration after the seller confirms."""
    integration = _get_integration(integration_id)
    form = EmptyForm()
    if form.validate_on_submit():
        name = integration.name
        db.session.delete(integration)
        db.session.commit()
        flash(_("Integration “%(name)s” is deleted.", name=name), "success")
        return redirect(url_for("integrations.list_integrations"))
    return render_template("integrations/delete.html", integration=integration, form=form)


@bp.route("/<id:integration_id>/general", methods=["GET", "POST"])
def general(integration_id: int) -> ResponseReturnValue:
    """The General settings page; its Save button saves every section at once, or none."""
    integration = _get_integration(integration_id)
    forms = {key: _section_form(section, integration) for key, section in SECTIONS.items()}
    if request.method == "POST":
        locks = _locks(integration)
        if all([_validate_section(form, integration, locks) for form in forms.values()]):
            changed = {name for form in forms.values() for name in _save_section(form, integration)}
            db.session.commit()
            settings_changed(integration.id, changed)
            flash(_("General settings are saved."), "success")
            return redirect(url_for("integrations.general", integration_id=integration.id))
        flash(_("Nothing was saved: correct the marked settings."), "error")
    status = 422 if any(form.errors for form in forms.values()) else 200
    return _render_general(integration, forms), status


@bp.post("/<id:integration_id>/general/<section_key>")
def save_section(integration_id: int, section_key: str) -> ResponseReturnValue:
    """Save one section of the General page (HTMX), or fall back to the whole page without JavaScript."""
    integration = _get_integration(integration_id)
    section = SECTIONS.get(section_key) or abort(404)
    form = _section_form(section, integration)
    locks = _locks(integration)
    saved = _validate_section(form, integration, locks)
    if saved:
        changed = _save_section(form, integration)
        db.session.commit()
        settings_changed(integration.id, set(changed))
    if not hx():
        if saved:
            flash(_("%(section)s is saved.", section=section.title), "success")
            return redirect(url_for("integrations.general", integration_id=integration.id))
        forms = {key: _section_form(other, integration) for key, other in SECTIONS.items()}
        forms[section.key] = form
        return _render_general(integration, forms), 422
    return (
        render_template(
            "integrations/_section_response.html",
            integration=integration,
            section=section,
            form=form,
            saved=saved,
            locks=locks,
            caveats=_caveats(integration),
            changes=_latest_changes(integration),
        ),
        200 if saved else 422,
    )


# ---------------------------------------------------------------------------------------------------


def _render_form(form: IntegrationForm, integration: Integration | None) -> ResponseReturnValue:
    sides = []
    for side in Side:
        kinds = KINDS[side]
        kind = kinds.get(_kind_field(form, side).data) or next(iter(kinds.values()))
        stored = integration.credentials(side) if integration else {}
        fields = [
            (form.credential_field(side, credential), credential.secret and bool(stored.get(credential.name)))
            for credential in kind.credential_fields
        ]
        sides.append((side, kind, fields))
    status = 422 if form.errors else 200
    return render_template(
        "integrations/form.html", form=form, integration=integration, sides=sides, connect_form=EmptyForm()
    ), status


def _kind_field(form: IntegrationForm, side: Side) -> Field:
    return form.marketplace_kind if side is Side.MARKETPLACE else form.shop_kind


def _credentials_complete(form: IntegrationForm, integration: Integration | None) -> bool:
    """Every credential is given. A secret is never shown back, so a blank one keeps the stored secret,
    unless the address moved to another host: a stored secret only ever goes where it was entered for.
    A plain field (the seller ID) is shown, so blank means blank."""
    complete = True
    for side in Side:
        stored = integration.credentials(side) if integration else {}
        moved = integration is not None and _host(getattr(integration, f"{side}_base_url")) != _host(
            _base_url_field(form, side).data
        )
        kind = KINDS[side].get(_kind_field(form, side).data)
        if kind is None:
            continue  # not a kind the hub knows: the form's own validation says so
        for credential in kind.credential_fields:
            field = form.credential_field(side, credential)
            if (field.data or "").strip() or not credential.required:
                continue
            if credential.secret and stored.get(credential.name):
                if not moved:
                    continue
                error = _("The address moved to another host: enter this secret again.")
            else:
                error = _("Required.")
            field.errors = [*field.errors, error]
            complete = False
    return complete


def _base_url_field(form: IntegrationForm, side: Side) -> Field:
    return form.marketplace_base_url if side is Side.MARKETPLACE else form.shop_base_url


def _host(url: str | None) -> str:
    return urlsplit(url or "").netloc.lower()


def _committed(form: IntegrationForm) -> bool:
    """Commit; a twin request that took the name a moment earlier gets the form back, not a 500."""
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        form.name.errors = [*form.name.errors, _("You already have an integration with this name.")]
        return False
    return True


def _below_cap(form: IntegrationForm) -> bool:
    """Integrations per account are capped (MAX_INTEGRATIONS_PER_ACCOUNT): a careful service's limit
    against a stolen or scripted account, well above what a seller uses."""
    cap = current_app.config["MAX_INTEGRATIONS_PER_ACCOUNT"]
    count = db.session.scalar(
        sa.select(sa.func.count(Integration.id)).where(Integration.account_id == _account().id)
    )
    if (count or 0) < cap:
        return True
    form.name.errors = [
        *form.name.errors,
        _("An account can have %(cap)d integrations. Delete one you no longer use first.", cap=cap),
    ]
    return False


def _name_free(form: IntegrationForm, integration: Integration | None) -> bool:
    query = sa.select(Integration.id).where(
        Integration.account_id == _account().id, Integration.name == (form.name.data or "").strip()
    )
    if integration is not None:
        query = query.where(Integration.id != integration.id)
    if db.session.scalar(query) is None:
        return True
    form.name.errors = [*form.name.errors, _("You already have an integration with this name.")]
    return False


def _fill(integration: Integration, form: IntegrationForm) -> None:
    """Copy the form into the integration, recording each change; a lost shipping agreement turns off
    the settings that depend on it."""
    actor = _account().email
    new = {
        "name": (form.name.data or "").strip(),
        "marketplace_base_url": (form.marketplace_base_url.data or "").strip(),
        "shop_base_url": (form.shop_base_url.data or "").strip(),
        "own_shipping_agreement": form.own_shipping_agreement.data,
        "active": form.active.data,
        "pull_interval": form.pull_interval.data,
    }
    if integration.id is None:
        integration.marketplace_kind = form.marketplace_kind.data
        integration.shop_kind = form.shop_kind.data
    moved = {side for side in Side if getattr(integration, f"{side}_base_url") != new[f"{side}_base_url"]}
    for name, value in new.items():
        if integration.id is not None and getattr(integration, name) != value:
            integration.log_change(actor, name, getattr(integration, name), value)
        setattr(integration, name, value)
    for side in Side:
        stored = integration.credentials(side)
        values = dict(stored)
        for credential in integration.kind(side).credential_fields:
            given = (form.credential_field(side, credential).data or "").strip()
            if given or not credential.secret:
                values[credential.name] = given
        if values != stored:
            integration.set_credentials(side, values)
            if integration.id is not None:
                integration.log_change(actor, f"{side}_credentials", "", REPLACED)
            moved.add(side)
    for side in moved:
        integration.platform_changed(side)
    if not integration.own_shipping_agreement and integration.settings is not None:
        integration.change_settings(without_own_shipping(integration.settings.to_domain()), actor)
    if integration.settings is not None:  # what the marketplace cannot do is off, and says so
        saved = integration.settings.as_saved()
        integration.change_settings(without(saved, integration.unavailable()), actor)


def _section_form(section: Section, integration: Integration) -> SectionForm:
    """The section's form, filled from the request on POST and from the stored settings otherwise."""
    colors = {}
    if section.form_class is ColorsForm:
        colors = {
            COLOR_FIELD_PREFIX + status.value: color
            for status, color in integration.status_color_map().items()
        }
    formdata = request.form if request.method == "POST" else None
    return section.form_class(formdata, obj=integration.settings, **colors)


def _validate_section(form: SectionForm, integration: Integration, locks: dict[str, Markup]) -> bool:
    """Field checks, then the page's rules (own shipping agreement, notification email); a broken rule
    reads as its lock, with the link to where it can be fixed."""
    valid = form.validate()
    errors = violations(
        form.settings_values(),
        integration.settings.to_domain(),
        own_shipping=integration.own_shipping_agreement,
        has_notification_email=bool(_account().notification_email),
        unavailable=integration.unavailable(),
    )
    for name, reason in errors.items():
        form[name].errors = [*form[name].errors, locks.get(name, reason)]
    return valid and not errors


def _locks(integration: Integration) -> dict[str, Markup]:
    """Settings that cannot be switched on now, each with the reason and a link to where to fix it."""
    locks: dict[str, Markup] = {}
    if not integration.own_shipping_agreement:
        fix = url_for("integrations.edit_integration", integration_id=integration.id)
        reason = Markup('{} <a href="{}">{}</a>').format(OWN_SHIPPING_REASON, fix, _("Edit integration"))
        locks.update(dict.fromkeys(OWN_SHIPPING_ONLY, reason))
    if not _account().notification_email:
        fix = url_for("auth.user_settings")
        reason = Markup('{} <a href="{}">{}</a>').format(
            NOTIFICATION_EMAIL_REASON, fix, _("Open User Settings")
        )
        locks.update(dict.fromkeys(NEEDS_NOTIFICATION_EMAIL, reason))
    for kind in (integration.marketplace, integration.shop):
        for name, why in kind.unavailable.items():
            where = _("Not available on %(marketplace)s:", marketplace=kind.label)
            locks[name] = Markup("{} {}").format(where, why)
    return locks


def _caveats(integration: Integration) -> dict[str, Markup]:
    """Settings that work with a part their platform cannot do, each with what the seller does instead."""
    caveats: dict[str, Markup] = {}
    for kind in (integration.marketplace, integration.shop):
        for name, what in kind.caveats.items():
            caveats[name] = Markup("{} {}").format(_("On %(platform)s:", platform=kind.label), what)
    return caveats


def _save_section(form: SectionForm, integration: Integration) -> list[str]:
    """Save a section; the names of the settings that changed."""
    actor = _account().email
    changed = integration.change_settings(form.settings_values(), actor)
    if isinstance(form, ColorsForm):
        integration.change_status_colors(form.status_colors(), actor)
    return changed


def _latest_changes(integration: Integration) -> list:
    return integration.latest_changes(current_app.config["SETTINGS_HISTORY_LENGTH"])


def _render_general(integration: Integration, forms: dict[str, SectionForm]) -> str:
    from blueprints.orders.queue import open_errors  # the orders blueprint reads this one's forms

    return render_template(
        "integrations/general.html",
        integration=integration,
        sections=SECTIONS,
        forms=forms,
        failed=any(form.errors for form in forms.values()),
        errors_open=open_errors(integration.account_id, integration.id),
        locks=_locks(integration),
        caveats=_caveats(integration),
        changes=_latest_changes(integration),
    )
