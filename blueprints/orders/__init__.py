"""Orders > Orders: the account's orders, with the Transfer and Retry actions."""

from flask import Blueprint

bp = Blueprint("orders", __name__, url_prefix="/orders")

from blueprints.orders import export, overview, queue, routes  # noqa: E402,F401
