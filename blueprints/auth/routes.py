"""Sign up, sign in, sign out, passwords, User Settings and the notification address's confirmation."""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask.wrappers import Response
from flask_babel import gettext as _
from flask_babel import refresh
from flask_login import current_user, login_required, login_user, logout_user
from redis.exceptions import RedisError

from blueprints.auth import bp
from blueprints.auth.forms import (
    ChangePasswordForm,
    EmptyForm,
    ForgotPasswordForm,
    LoginForm,
    ResetPasswordForm,
    SignupForm,
    UserSettingsForm,
)
from extensions import db, limiter
from jobs.tasks import post_account_mail
from models import Account, Integration
from models.base import utcnow
from sync.notifications import AccountMail
from sync.settings import without_notification_email

log = logging.getLogger(__name__)


# -- Rate limits ----------------------------------------------------------------------------------------


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _too_many_attempts() -> str:
    return _("Too many sign-in attempts. Wait a minute and try again.")


def _login_email() -> str:
    """Guesses at one account count together, from however many addresses they come."""
    return "login:" + Account.normalize_email(request.form.get("email", ""))


def _signup_limit() -> str:
    return current_app.config["SIGNUP_RATE_LIMIT"]


def _too_many_signups() -> str:
    return _("Too many sign-ups from your network. Try again later.")


def _reset_limit() -> str:
    return current_app.config["PASSWORD_RESET_RATE_LIMIT"]


def _too_many_resets() -> str:
    return _("Too many password reset requests. Try again later.")


def _reset_email() -> str:
    """Requests for one account count together: its owner's mailbox is not flooded from many addresses."""
    return "reset:" + Account.normalize_email(request.form.get("email", ""))


def _password_change_limit() -> str:
    return current_app.config["PASSWORD_CHANGE_RATE_LIMIT"]


def _too_many_password_changes() -> str:
    return _("Too many attempts to change the password. Wait a few minutes and try again.")


def _signed_in_account() -> str:
    """Per account, not per sign-in: a thief with one stolen session gets no more guesses from a second."""
    if current_user.is_authenticated:
        return f"account:{current_user.id}"
    return f"address:{request.remote_addr}"


def _confirmation_limit() -> str:
    return current_app.config["CONFIRMATION_RATE_LIMIT"]


def _too_many_confirmations() -> str:
    return _("Too many confirmation mails. Try again in an hour.")


def _address_to_confirm() -> str:
    if request.endpoint == "auth.user_settings":
        return Account.normalize_email(request.form.get("notification_email", ""))
    return Account.normalize_email(getattr(current_user, "notification_email", None) or "")


def _confirmation_address() -> str:
    """Mails to one address count together, from however many accounts name it (it may be a stranger's)."""
    return "confirm-to:" + _address_to_confirm()


def _no_confirmation_mail() -> bool:
    """A settings save that keeps the address mails nothing: it is not held to the confirmation limit."""
    if not current_user.is_authenticated:
        return True
    if request.endpoint == "auth.user_settings":
        # Compared as the model compares it (Account.change_notification_email): exactly.
        address = request.form.get("notification_email", "").strip()
        return not address or address == current_user.notification_email
    return False


def _confirmation_mailed(response: Response) -> bool:
    return bool(g.get("confirmation_mailed"))


def _confirmation_limits(view: Callable[[], ResponseReturnValue]) -> Callable[[], ResponseReturnValue]:
    """Confirmation mails, counted per account and per address across the routes that send them."""
    for key_func in (_signed_in_account, _confirmation_address):
        view = limiter.shared_limit(
            _confirmation_limit,
            scope=f"confirmation-{key_func.__name__}",
            key_func=key_func,
            methods=["POST"],
            error_message=_too_many_confirmations,
            exempt_when=_no_confirmation_mail,
            deduct_when=_confirmation_mailed,
        )(view)
    return view


# -- Sign in and out ----------------------------------------------------------------------------------


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
            _sign_in(account, remember=bool(form.remember.data))
            return redirect(_safe_next(request.args.get("next")))
        form.password.errors.append(_("Wrong email or password."))
    status = 422 if form.errors else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(_signup_limit, methods=["POST"], error_message=_too_many_signups)
def signup() -> ResponseReturnValue:
    """Create an account."""
    if current_user.is_authenticated:
        return redirect(url_for("index"))
    form = SignupForm()
    if form.validate_on_submit():
        email = Account.normalize_email(form.email.data or "")
        exists = _("An account with this email already exists. Sign in instead.")
        if db.session.scalar(sa.select(Account.id).where(Account.email == email)):
            form.email.errors.append(exists)
        else:
            account = Account(email=email, language=form.language.data or "en")
            account.set_password(form.password.data or "")
            db.session.add(account)
            try:
                db.session.flush()
            except sa.exc.IntegrityError:
                # The same address signed up in a parallel request since the check above: same answer.
                db.session.rollback()
                form.email.errors.append(exists)
            else:
                _sign_in(account, remember=False)
                refresh()
                flash(_("Welcome! Add your first integration to start."), "success")
                return redirect(url_for("integrations.list_integrations"))
    status = 422 if form.errors else 200
    return render_template("auth/signup.html", form=form), status


def _sign_in(account: Account, remember: bool) -> None:
    account.start_session(request.user_agent.string)
    db.session.commit()
    login_user(account, remember=remember)


@bp.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    """Sign out: this sign-in ends on the server too, so a copy of its cookies is worth nothing."""
    if EmptyForm().validate_on_submit():
        current_user.end_current_session()
        db.session.commit()
        logout_user()
    return redirect(url_for("auth.login"))


@bp.post("/settings/sessions/end")
@login_required
def sign_out_everywhere() -> ResponseReturnValue:
    """Sign out everywhere: every sign-in of the account ends, this one too."""
    if not EmptyForm().validate_on_submit():
        return redirect(url_for("auth.user_settings"))
    current_user.end_sessions()
    db.session.commit()
    logout_user()
    flash(_("You are signed out everywhere. Sign in again here."), "success")
    return redirect(url_for("auth.login"))


# -- User Settings --------------------------------------------------------------------------------------


@bp.route("/settings", methods=["GET", "POST"])
@_confirmation_limits
@login_required
def user_settings() -> ResponseReturnValue:
    """User Settings: the notification email address and the language; the password; the sign-ins."""
    account: Account = current_user._get_current_object()
    form = UserSettingsForm(obj=account)
    if form.validate_on_submit():
        notification_email = form.notification_email.data or None
        if account.notification_email and not notification_email:
            _notifications_off(account)
        changed = account.change_notification_email(notification_email)
        account.language = form.language.data or "en"
        db.session.commit()
        refresh()
        flash(_("Your settings are saved."), "success")
        if changed and account.notification_email:
            _mail_confirmation(account)
        return redirect(url_for("auth.user_settings"))
    return _settings_page(form=form)


@bp.post("/settings/confirmation")
@_confirmation_limits
@login_required
def resend_confirmation() -> ResponseReturnValue:
    """Send the notification address its confirmation link again."""
    account: Account = current_user._get_current_object()
    unconfirmed = account.notification_email and not account.notification_email_confirmed
    if EmptyForm().validate_on_submit() and unconfirmed:
        _mail_confirmation(account)
    return redirect(url_for("auth.user_settings"))


@bp.post("/settings/password")
@limiter.limit(_password_change_limit, key_func=_signed_in_account, error_message=_too_many_password_changes)
@login_required
def change_password() -> ResponseReturnValue:
    """Change the password, the current one first; every other sign-in of the account ends."""
    account: Account = current_user._get_current_object()
    form = ChangePasswordForm()
    if form.validate_on_submit():
        if account.check_password(form.current_password.data or ""):
            account.set_password(form.new_password.data or "")
            account.end_sessions(keep_current=True)
            db.session.commit()
            flash(_("Your password is changed. Every other sign-in of the account has ended."), "success")
            return redirect(url_for("auth.user_settings"))
        form.current_password.errors.append(_("This is not your current password."))
    return _settings_page(password_form=form)


def _settings_page(
    form: UserSettingsForm | None = None, password_form: ChangePasswordForm | None = None
) -> ResponseReturnValue:
    account: Account = current_user._get_current_object()
    form = form or UserSettingsForm(obj=account, formdata=None)
    password_form = password_form or ChangePasswordForm(formdata=None)
    status = 422 if form.errors or password_form.errors else 200
    return render_template(
        "auth/settings.html",
        form=form,
        password_form=password_form,
        sessions=account.live_sessions(),
        current_session=account.current_session_id(),
    ), status


def _mail_confirmation(account: Account) -> None:
    try:
        post_account_mail(account.id, AccountMail.CONFIRM_ADDRESS)
    except RedisError as error:
        log.warning("could not queue the confirmation mail of account %s: %s", account.id, error)
        flash(_("The confirmation mail could not be sent just now. Send it again in a minute."), "warning")
        return
    g.confirmation_mailed = True
    flash(
        _(
            "We sent a confirmation link to %(address)s. Order notifications go there once it is opened.",
            address=account.notification_email,
        ),
        "info",
    )


def _notifications_off(account: Account) -> None:
    """Without an address there is nowhere to send notifications: switch them off, on the record."""
    integrations = db.session.scalars(sa.select(Integration).where(Integration.account_id == account.id))
    switched = False
    for integration in integrations:
        changes = without_notification_email(integration.settings.to_domain())
        switched |= bool(integration.change_settings(changes, actor=account.email))
    if switched:
        flash(_("Order notifications are switched off: they have no address to go to."), "warning")


# -- Links from mails: the address confirmation and the password reset --------------------------------


@bp.route("/confirm/<token>", methods=["GET", "POST"])
def confirm_address(token: str) -> ResponseReturnValue:
    """Confirm a notification address with the link mailed to it: a button, so that a mail scanner
    opening every link confirms nothing."""
    account = Account.from_confirmation_token(token)
    if account is None:
        return render_template("auth/confirm.html", address=None, form=None), 404
    form = EmptyForm()
    if form.validate_on_submit() and not account.notification_email_confirmed:
        account.notification_email_confirmed_at = utcnow()
        db.session.commit()
    return render_template(
        "auth/confirm.html",
        address=account.notification_email,
        confirmed=account.notification_email_confirmed,
        form=form,
    )


@bp.route("/password/reset", methods=["GET", "POST"])
@limiter.limit(_reset_limit, methods=["POST"], error_message=_too_many_resets)
@limiter.limit(_reset_limit, methods=["POST"], error_message=_too_many_resets, key_func=_reset_email)
def request_password_reset() -> ResponseReturnValue:
    """Ask for a link to choose a new password, mailed to the account's address."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        email = Account.normalize_email(form.email.data or "")
        account = db.session.scalar(sa.select(Account).where(Account.email == email))
        if account is not None:
            try:
                post_account_mail(account.id, AccountMail.PASSWORD_RESET)
            except RedisError as error:
                log.warning("could not queue the password reset mail of account %s: %s", account.id, error)
        # The same answer whether an account uses the address or not: the page tells nobody who has one.
        sent = _(
            "If an account uses %(email)s, a link to choose a new password is on its way there.", email=email
        )
        flash(sent, "info")
        return redirect(url_for("auth.login"))
    status = 422 if form.errors else 200
    return render_template("auth/forgot.html", form=form), status


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> ResponseReturnValue:
    """Choose a new password with the link from the mail; every sign-in of the account ends."""
    account = Account.from_reset_token(token)
    if account is None:
        flash(_("This link does not work any more: it was used or it expired. Ask for a new one."), "error")
        return redirect(url_for("auth.request_password_reset"))
    form = ResetPasswordForm()
    if form.validate_on_submit():
        account.set_password(form.password.data or "")
        account.end_sessions()
        db.session.commit()
        logout_user()
        flash(_("Your password is changed. Sign in with it."), "success")
        return redirect(url_for("auth.login"))
    status = 422 if form.errors else 200
    return render_template("auth/reset.html", form=form), status


def _safe_next(target: str | None) -> str:
    """Follow ?next= only to a path on this site.

    Browsers drop tabs and newlines anywhere in a URL and read a backslash as a slash, so `/\\evil`,
    `/<tab>/evil` and `////evil` all lead off-site: only a target that needs no such reading, a single
    slash and then a path, is followed.
    """
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and target.isprintable()
        and "\\" not in target
    ):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("index")
