"""The application factory: binds extensions, registers blueprints and CLI commands."""

from __future__ import annotations

import logging

from flask import Flask, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_url
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import BaseConverter, IntegerConverter, ValidationError
from werkzeug.wrappers import Response

from blueprints import formats
from blueprints.params import parse_id
from config import INSTANCE, Config, config_from_env
from extensions import babel, csrf, db, htmx, hx, limiter, login_manager, mail, migrate

# Content from our own origin only; Pico draws its form icons with data: SVGs.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class IdConverter(IntegerConverter):
    """A database id in a URL, read as every id is (blueprints/params.py): a huge number or a digit of
    another script is a 404, never a database error or another order."""

    regex = "[0-9]+"  # not `\d`, which matches the digits of every script

    def to_python(self, value: str) -> int:
        if (number := parse_id(value)) is None:
            raise ValidationError()
        return number


def create_app(config: Config | None = None) -> Flask:
    app = Flask(__name__, instance_path=str(INSTANCE))
    app.config.from_object(config or config_from_env())
    converters: dict[str, type[BaseConverter]] = {"id": IdConverter}
    app.url_map.converters.update(converters)
    if hops := app.config["PROXY_FIX_HOPS"]:
        # Behind a reverse proxy: trust its X-Forwarded-* so the login limit sees the client's address.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The run log reads as what happened: a line per pull that brought orders, and what went wrong. Every
    # HTTP call of a connector is in the order history; RQ's line per job and the dev server's line per
    # request (a poll every few seconds per open page) would drown it.
    for noisy in ("httpx", "rq.worker", "rq.scheduler", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    db.init_app(app)
    migrate.init_app(app, db, directory="migrations", render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    htmx.init_app(app)
    mail.init_app(app)
    babel.init_app(app, locale_selector=_select_locale)
    app.jinja_env.globals["get_locale"] = get_locale
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.unauthorized_handler(_unauthorized)

    from blueprints.auth import bp as auth_bp
    from blueprints.integrations import bp as integrations_bp
    from blueprints.notifications import bp as notifications_bp
    from blueprints.orders import bp as orders_bp
    from blueprints.products import bp as products_bp
    from blueprints.webhooks import bp as webhooks_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(integrations_bp)
    app.register_blueprint(notifications_bp)
    app.register_blueprint(orders_bp)
    app.register_blueprint(products_bp)
    app.register_blueprint(webhooks_bp)

    import blueprints.errors

    blueprints.errors.init_app(app)
    import sync.changefeed  # noqa: F401 (its session events feed the live pages)
    from commands import register_commands

    register_commands(app)
    formats.register(app)

    @app.get("/")
    @login_required
    def index() -> ResponseReturnValue:
        """The panel opens on the Overview."""
        return redirect(url_for("orders.overview"))

    app.after_request(_security_headers)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(500, _server_error)
    return app


def _select_locale() -> str | None:
    if current_user.is_authenticated:
        return current_user.language
    return request.accept_languages.best_match(["en", "tr"])


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    # Pages answer HTMX requests with a fragment and others with the whole page.
    response.vary.add("HX-Request")
    # A page is a seller's own (orders, customers, a form showing back the keys just typed): no cache
    # keeps it, not even the browser's after signing out.
    if response.mimetype == "text/html" and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
    return response


def _unauthorized() -> ResponseReturnValue:
    """Send a signed-out visitor to the sign-in page; for HTMX, the whole window goes, not a fragment."""
    flash(str(_l("Please sign in to open this page.")), "info")
    if hx():
        page = hx().current_url or request.url
        return "", 401, {"HX-Redirect": login_url("auth.login", next_url=page)}
    return redirect(login_url("auth.login", next_url=request.url))


def _http_error(error: HTTPException) -> ResponseReturnValue:
    if error.code is None or error.code < 400:
        return error
    return render_template("error.html", error=error), error.code


def _server_error(error: Exception) -> ResponseReturnValue:
    # Flask has logged the exception; a half-done unit of work must not leak into the next request.
    db.session.rollback()
    return render_template("error.html", error=None), 500
