"""Sign up, sign in, sign out and User Settings."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from blueprints.auth import routes  # noqa: E402,F401
