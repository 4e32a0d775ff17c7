"""Orders > Integration List: integrations, their credentials and their General settings."""

from flask import Blueprint

bp = Blueprint("integrations", __name__, url_prefix="/integrations")

from blueprints.integrations import activity, oauth, routes, webhooks  # noqa: E402,F401
