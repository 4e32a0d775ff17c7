"""Sign up, sign in, sign out and User Settings."""

from __future__ import annotations

from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import refresh
from flask_login import current_user, login_required, login_user, logout_user

from blueprints.auth import bp
from blueprints.auth.forms import EmptyForm, LoginForm, SignupForm, UserSettingsForm
from extensions import db, limiter
from models import Account, Integration
from sync.settings import without_notification_email


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _too_many_attempts() -> str:
    return _("Too many sign-in attempts. Wait a minute and try again.")


def _login_email() -> str:
    """Guesses at one account count together, from however many addresses they come."""
    return "login:" + Account.normalize_email(request.form.get("email", ""))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], error_message=_too_many_attempts)
@limiter.limit(_login_limit, methods=["POST"], error_message=_too_many_attempts, key_func=_login_email)
def login() -> ResponseReturnValue:
    """Sign in with email and password."""
    if current_user.is_authenticated:
        return redirect(url_for("index"))
    form = LoginForm()
    if form.validate_on_submit():
        email = Account.normalize_email(form.email.data or "")
        account = db.session.scalar(sa.select(Account).where(Account.email == email))
        if account is not None and account.check_password(form.password.data or ""):
            login_user(account, remember=form.remember.data)
            return redirect(_safe_next(request.args.get("next")))
        form.password.errors.append(_("Wrong email or password."))
    status = 422 if form.errors else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> ResponseReturnValue:
    """Create an account."""
    if current_user.is_authenticated:
        return redirect(url_for("index"))
    form = SignupForm()
    if form.validate_on_submit():
        email = Account.normalize_email(form.email.data or "")
        if db.session.scalar(sa.select(Account.id).where(Account.email == email)):
            form.email.errors.append(_("An account with this email already exists. Sign in instead."))
        else:
            account = Account(email=email, language=form.language.data or "en")
            account.set_password(form.password.data or "")
            db.session.add(account)
            db.session.commit()
            login_user(account)
            refresh()
            flash(_("Welcome! Add your first integration to start."), "success")
            return redirect(url_for("integrations.list_integrations"))
    status = 422 if form.errors else 200
    return render_template("auth/signup.html", form=form), status


@bp.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    """Sign out."""
    if EmptyForm().validate_on_submit():
        logout_user()
    return redirect(url_for("auth.login"))


@bp.route("/settings", methods=["GET", "POST"])
@login_required
def user_settings() -> ResponseReturnValue:
    """User Settings: the notification email address and the language."""
    account: Account = current_user._get_current_object()
    form = UserSettingsForm(obj=account)
    if form.validate_on_submit():
        notification_email = form.notification_email.data or None
        if account.notification_email and not notification_email:
            _notifications_off(account)
        account.notification_email = notification_email
        account.language = form.language.data or "en"
        db.session.commit()
        refresh()
        flash(_("Your settings are saved."), "success")
        return redirect(url_for("auth.user_settings"))
    status = 422 if form.errors else 200
    return render_template("auth/settings.html", form=form), status


def _notifications_off(account: Account) -> None:
    """Without an address there is nowhere to send notifications: switch them off, on the record."""
    integrations = db.session.scalars(sa.select(Integration).where(Integration.account_id == account.id))
    switched = False
    for integration in integrations:
        changes = without_notification_email(integration.settings.to_domain())
        switched |= bool(integration.change_settings(changes, actor=account.email))
    if switched:
        flash(_("Order notifications are switched off: they have no address to go to."), "warning")


def _safe_next(target: str | None) -> str:
    """Follow ?next= only to a path on this site."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and "\\" not in target:
            return target
    return url_for("index")
