"""Forms of the auth blueprint."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, SubmitField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional

LANGUAGE_CHOICES = [("en", "English"), ("tr", "Türkçe")]


def _strip(value: str | None) -> str | None:
    return value.strip() if value else value


class EmptyForm(FlaskForm):
    """A POST-only button: carries nothing but the CSRF token."""


class LoginForm(FlaskForm):
    email = EmailField(
        _l("Email"), filters=[_strip], validators=[DataRequired(), Email(check_deliverability=False)]
    )
    password = PasswordField(_l("Password"), validators=[DataRequired()])
    remember = BooleanField(_l("Keep me signed in"))
    submit = SubmitField(_l("Sign in"))


def _new_password(label: str = _l("Password")) -> PasswordField:
    return PasswordField(
        label, validators=[DataRequired(), Length(min=8, max=128, message=_l("Use at least 8 characters."))]
    )


def _repeat(field: str) -> PasswordField:
    return PasswordField(
        _l("Repeat password"),
        validators=[DataRequired(), EqualTo(field, message=_l("The passwords do not match."))],
    )


class SignupForm(FlaskForm):
    email = EmailField(
        _l("Email"),
        filters=[_strip],
        validators=[DataRequired(), Email(check_deliverability=False), Length(max=254)],
    )
    password = _new_password()
    confirm = _repeat("password")
    language = SelectField(_l("Language"), choices=LANGUAGE_CHOICES, default="en")
    submit = SubmitField(_l("Create account"))


class UserSettingsForm(FlaskForm):
    notification_email = EmailField(
        _l("Notification email address"),
        description=_l("Order notifications of every integration go to this address."),
        filters=[_strip],
        validators=[Optional(), Email(check_deliverability=False), Length(max=254)],
    )
    language = SelectField(_l("Language"), choices=LANGUAGE_CHOICES)
    submit = SubmitField(_l("Save"))


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired()])
    new_password = _new_password(_l("New password"))
    repeat_password = _repeat("new_password")
    submit = SubmitField(_l("Change password"))


class ForgotPasswordForm(FlaskForm):
    email = EmailField(
        _l("Email"), filters=[_strip], validators=[DataRequired(), Email(check_deliverability=False)]
    )
    submit = SubmitField(_l("Send the link"))


class ResetPasswordForm(FlaskForm):
    password = _new_password(_l("New password"))
    confirm = _repeat("password")
    submit = SubmitField(_l("Set the password"))
