"""Products: the panel stock that Stock Management lowers and restores, kept by hand or from an XML feed."""

from flask import Blueprint

bp = Blueprint("products", __name__, url_prefix="/products")

from blueprints.products import routes  # noqa: E402,F401
