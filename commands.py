"""CLI commands: `flask seed-demo`, `flask worker`, `flask cron`, `flask rotate-credentials`."""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask import Flask, current_app

from connectors.registry import (
    AMAZON,
    CICEKSEPETI,
    HEPSIBURADA,
    IDEASOFT,
    N11,
    PAZARAMA,
    SHOPIFY,
    TICIMAX,
    TRENDYOL,
    TSOFT,
    WOOCOMMERCE,
    Side,
)
from extensions import db
from jobs.runner import run_cron, run_worker
from models import Account, Integration, IntegrationSettings
from models.base import utcnow
from models.crypto import rotate


def register_commands(app: Flask) -> None:
    app.cli.add_command(seed_demo)
    app.cli.add_command(worker)
    app.cli.add_command(rotate_credentials)
    app.cli.add_command(cron)


@click.command("seed-demo")
def seed_demo() -> None:
    """Create the demo account and its sandbox integration (development only; safe to run twice)."""
    config = current_app.config
    if not config["DEMO_SEED_ALLOWED"]:
        raise click.ClickException("the demo seed is disabled in this configuration")
    email = Account.normalize_email(config["DEMO_EMAIL"])
    account = db.session.scalar(sa.select(Account).where(Account.email == email))
    if account is None:
        account = Account(email=email, language="en")
        db.session.add(account)
    account.set_password(config["DEMO_PASSWORD"])
    # Order Notifications need an address: the demo's mails land in the local sink's Mailbox.
    account.notification_email = account.notification_email or email
    if account.notification_email == email and account.notification_email_confirmed_at is None:
        # The demo's own login, landing in the local sink: nobody else to ask, so it counts as confirmed.
        account.notification_email_confirmed_at = utcnow()
    db.session.flush()
    sandbox = config["SANDBOX_URL"].rstrip("/")
    kinds = set(
        db.session.scalars(
            sa.select(Integration.marketplace_kind).where(Integration.account_id == account.id)
        )
    )
    # One integration per marketplace the sandbox plays, into each of its shops in turn.
    shops = {
        WOOCOMMERCE.key: ("woocommerce", {"consumer_key": "ck_sandbox", "consumer_secret": "cs_sandbox"}),
        SHOPIFY.key: (
            "shopify",
            {"shopify_client_id": "shopify-sandbox-client", "shopify_client_secret": "shpss_sandbox_secret"},
        ),
        TSOFT.key: ("tsoft", {"tsoft_user": "hub", "tsoft_password": "tsoft-sandbox-pass"}),
        TICIMAX.key: ("ticimax", {"ticimax_ws_code": "TCX-SANDBOX-7Q4M2K9X"}),
        # Connected on the sandbox's consent page: the integration's page, Connect (the seed cannot).
        IDEASOFT.key: (
            "ideasoft",
            {
                "ideasoft_client_id": "ideasoft-sandbox-client",
                "ideasoft_client_secret": "ideasoft-sandbox-secret",
            },
        ),
    }
    for (kind, path, credentials), shop in zip(
        (
            (
                TRENDYOL,
                "trendyol/integration",
                {"seller_id": "100200", "api_key": "sandbox-key", "api_secret": "sandbox-secret"},
            ),
            (
                HEPSIBURADA,
                "hepsiburada",
                {"merchant_id": "6d2a7b6e-4b52-4d0f-9a4c-1f0e9e3c2b11", "service_key": "Hb5aNdb0xK3y"},
            ),
            (N11, "n11", {"app_key": "n11-sandbox-key", "app_secret": "n11-sandbox-secret"}),
            (
                AMAZON,
                "amazon",
                {
                    "refresh_token": "Atzr|sandbox-refresh",
                    "client_id": "amzn1.application-oa2-client.sandbox",
                    "client_secret": "sandbox-secret",
                    "merchant_token": "A1SANDBOXSELLER",
                },
            ),
            (
                CICEKSEPETI,
                "ciceksepeti",
                {"ciceksepeti_seller_id": "50123", "ciceksepeti_api_key": "cs-sandbox-key"},
            ),
            (
                PAZARAMA,
                "pazarama",
                {
                    "pazarama_client_id": "pazarama-sandbox-id",
                    "pazarama_client_secret": "pazarama-sandbox-secret",
                },
            ),
        ),
        (WOOCOMMERCE, SHOPIFY, TSOFT, WOOCOMMERCE, TICIMAX, IDEASOFT),
        strict=True,
    ):
        if kind.key in kinds:
            continue
        shop_path, shop_keys = shops[shop.key]
        integration = Integration(
            account_id=account.id,
            name=f"{kind.label} → {shop.label} (sandbox)",
            marketplace_kind=kind.key,
            marketplace_base_url=f"{sandbox}/{path}",
            shop_kind=shop.key,
            shop_base_url=f"{sandbox}/{shop_path}",
            own_shipping_agreement=True,
            pull_interval=max(config["DEMO_PULL_INTERVAL"], kind.min_pull_interval),
            settings=IntegrationSettings.defaults(),
        )
        if kind in (N11, HEPSIBURADA):
            # A new order waits for the seller to accept (N11) or pack it (Hepsiburada): the demo's hub does.
            integration.settings.approval_feedback = True
        integration.set_credentials(Side.MARKETPLACE, credentials)
        integration.set_credentials(Side.SHOP, shop_keys)
        db.session.add(integration)
    db.session.commit()
    click.echo(f"demo login: {email} / {config['DEMO_PASSWORD']}")


# Every column that holds a secret: the seller's keys on each side, the webhooks' secret, a shop's tokens.
ENCRYPTED_COLUMNS = (
    *(f"{side}_credentials_encrypted" for side in Side),
    "webhook_secret_encrypted",
    "shop_tokens_encrypted",
)


@click.command("rotate-credentials")
def rotate_credentials() -> None:
    """Re-encrypt every stored credential with the newest key; then the older keys can be dropped."""
    count = 0
    for integration in db.session.scalars(sa.select(Integration)):
        for column in ENCRYPTED_COLUMNS:
            if token := getattr(integration, column):
                setattr(integration, column, rotate(token))
                count += 1
    db.session.commit()
    click.echo(f"re-encrypted {count} credential sets with the newest key")


@click.command("cron")
def cron() -> None:
    """Queue the tick that starts due pulls and sweeps the outbox, every TICK_SECONDS.

    One is enough; a second (for availability) is harmless: a tick still waiting is not queued again, and
    every tick claims its work.
    """
    run_cron(current_app.config["TICK_SECONDS"])


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option(
    "--fork/--no-fork",
    default=None,
    help="Each job in a forked work horse (isolated, slower) or in the worker (default: WORKER_FORK).",
)
def worker(burst: bool, fork: bool | None) -> None:
    """Run an RQ worker with the scheduler, inside the app context; it outlives Redis outages."""
    run_worker(fork=current_app.config["WORKER_FORK"] if fork is None else fork, burst=burst)
