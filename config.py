"""Every knob of the hub, read from the environment with safe local defaults.

`Config` runs on one machine with nothing installed by hand: SQLite and the secret keys live in
`instance/`, Redis is the embedded one. `ProductionConfig` refuses to start without real secrets.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent
INSTANCE = Path(os.environ.get("INSTANCE_PATH", ROOT / "instance"))


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def private_directory(path: Path) -> None:
    """Create `path` for its owner's eyes only (it holds keys, the database, mails), and close one that an
    earlier version left open to others."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


def _local_keys() -> dict[str, str]:
    """Secret keys kept in instance/ so a local restart can still read what it encrypted."""
    path = INSTANCE / "secret-keys.json"
    private_directory(INSTANCE)
    if path.exists():
        return json.loads(path.read_text())
    keys = {"SECRET_KEY": secrets.token_urlsafe(48), "CREDENTIALS_KEY": Fernet.generate_key().decode()}
    # Created readable by the owner only, and never overwritten: two processes starting at once agree.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return json.loads(path.read_text())
    with os.fdopen(fd, "w") as file:
        json.dump(keys, file)
    return keys


def _database_url(url: str | None) -> str:
    if not url:
        return f"sqlite:///{INSTANCE / 'hub.sqlite3'}"
    # Hosting platforms hand out postgres:// URLs; SQLAlchemy wants a driver name.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


SANDBOX_URL_DEFAULT = os.environ.get("SANDBOX_URL", "http://127.0.0.1:5050")


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 80}" if parts.hostname else ""


class Config:
    """Local defaults: everything runs on this machine."""

    # Signs sessions and CSRF tokens. Unset: a random key kept in instance/secret-keys.json.
    SECRET_KEY: str | None = os.environ.get("SECRET_KEY")
    # Fernet key(s) for marketplace and shop credentials, newest first, comma separated (rotation).
    CREDENTIALS_KEY: str | None = os.environ.get("CREDENTIALS_KEY")
    # SQLAlchemy URL; unset: SQLite in instance/hub.sqlite3. postgres:// URLs are accepted.
    SQLALCHEMY_DATABASE_URI = _database_url(os.environ.get("DATABASE_URL"))
    # hide_parameters: a database error names the statement, never the values (identity numbers, totals).
    SQLALCHEMY_ENGINE_OPTIONS: ClassVar[dict[str, object]] = {"pool_pre_ping": True, "hide_parameters": True}
    # Redis for RQ and the rate limiter; unset: the embedded Redis that `make run` starts.
    REDIS_URL: str | None = os.environ.get("REDIS_URL")
    # Port of the embedded Redis (used only when REDIS_URL is unset).
    EMBEDDED_REDIS_PORT = int(os.environ.get("EMBEDDED_REDIS_PORT", "6390"))
    # Where the login rate limit keeps its counters; unset: the same Redis as RQ.
    RATELIMIT_STORAGE_URI: str | None = os.environ.get("RATELIMIT_STORAGE_URI")
    # Sign-in attempts allowed per client address (flask-limiter syntax).
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10 per minute")
    # Reverse proxies in front of the app whose X-Forwarded-For/-Proto/-Host are trusted (0: none).
    PROXY_FIX_HOPS = int(os.environ.get("PROXY_FIX_HOPS", "0"))
    # Languages the panel speaks; the first is the default.
    LANGUAGES = ("en", "tr")
    BABEL_DEFAULT_LOCALE = "en"
    BABEL_DEFAULT_TIMEZONE = os.environ.get("TIMEZONE", "Europe/Istanbul")
    BABEL_TRANSLATION_DIRECTORIES = str(ROOT / "translations")
    # Send the session cookie over HTTPS only (set in production behind TLS).
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", False)
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    REMEMBER_COOKIE_HTTPONLY = True
    # The largest request body (an XML product feed upload), in bytes.
    MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", str(16 * 1024 * 1024)))
    # CSRF tokens last the whole session: a panel left open all day must still save.
    WTF_CSRF_TIME_LIMIT = None
    # Integrations one account may have (a limit against scripted abuse, well above real use).
    MAX_INTEGRATIONS_PER_ACCOUNT = int(os.environ.get("MAX_INTEGRATIONS_PER_ACCOUNT", "50"))
    # How many settings changes the General page lists.
    SETTINGS_HISTORY_LENGTH = int(os.environ.get("SETTINGS_HISTORY_LENGTH", "15"))
    # -- The pipeline -------------------------------------------------------------------------------
    # How often `flask cron` runs the tick that starts due pulls and sweeps the outbox (seconds).
    TICK_SECONDS = int(os.environ.get("TICK_SECONDS", "5"))
    # Integrations a tick starts at most.
    TICK_BATCH = int(os.environ.get("TICK_BATCH", "500"))
    # A pull re-reads this much before its cursor, so a late write is never skipped (seconds) ...
    PULL_OVERLAP_SECONDS = int(os.environ.get("PULL_OVERLAP_SECONDS", "300"))
    # ... but only one pull every this many seconds (at most half the overlap) re-reads it; the others go on
    # from the cursor (the newest modification read), so a pull every second does not ingest the last
    # minutes again each time. A write that shows up more than PULL_OVERLAP_SECONDS - PULL_OVERLAP_EVERY
    # late may be missed. 0: every pull re-reads the overlap.
    PULL_OVERLAP_EVERY = int(os.environ.get("PULL_OVERLAP_EVERY", "60"))
    # How far back the first pull of a new integration reads (hours; Trendyol keeps three months).
    PULL_FIRST_WINDOW_HOURS = int(os.environ.get("PULL_FIRST_WINDOW_HOURS", "24"))
    # A marketplace's least time between pulls (its rate limit over a day: Amazon's three minutes) holds
    # whatever a seller sets; off only for a run against the sandbox that wants every marketplace fast.
    MARKETPLACE_PULL_FLOORS = _env_bool("MARKETPLACE_PULL_FLOORS", True)
    # Packages per listing request (Trendyol allows up to 200); each page is ingested in one transaction.
    PULL_PAGE_SIZE = int(os.environ.get("PULL_PAGE_SIZE", "200"))
    # One sync cycle or import run reads at most this many pages, for at most this long (seconds), then
    # yields the worker to others and goes on from where it stopped in its next run.
    SYNC_PAGE_BUDGET = int(os.environ.get("SYNC_PAGE_BUDGET", "25"))
    SYNC_TIME_BUDGET = float(os.environ.get("SYNC_TIME_BUDGET", "30"))
    # A page that failed in a way the platform may get over (5xx, timeout, short 429) is tried this many
    # times within the cycle, with backoff between PULL_PAGE_BACKOFF_BASE and _MAX (seconds).
    PULL_PAGE_ATTEMPTS = int(os.environ.get("PULL_PAGE_ATTEMPTS", "3"))
    PULL_PAGE_BACKOFF_BASE = float(os.environ.get("PULL_PAGE_BACKOFF_BASE", "0.5"))
    PULL_PAGE_BACKOFF_MAX = float(os.environ.get("PULL_PAGE_BACKOFF_MAX", "4"))
    # A sync cycle that has not renewed its lease for this long (each page renews it) is taken as dead
    # and may be started again (seconds).
    PULL_LEASE_SECONDS = int(os.environ.get("PULL_LEASE_SECONDS", "300"))
    # Seconds any one step of an HTTP call to a marketplace or shop may take (connect, each read).
    CONNECTOR_TIMEOUT = float(os.environ.get("CONNECTOR_TIMEOUT", "15"))
    # -- The door out (connectors/http.py) ------------------------------------------------------------
    # Call plain http:// addresses at all (never in production; the allowlist below aside).
    OUTBOUND_HTTPS_ONLY = _env_bool("OUTBOUND_HTTPS_ONLY", False)
    # Hosts ("host" or "host:port", comma separated) that may be called although they are private or plain
    # http; unset: the sandbox's host and port in development, nothing in production.
    OUTBOUND_ALLOWLIST = os.environ.get("OUTBOUND_ALLOWLIST", _host_port(SANDBOX_URL_DEFAULT))
    # The largest answer read from a platform (bytes), and the longest one call may take in all (seconds).
    OUTBOUND_MAX_BYTES = int(os.environ.get("OUTBOUND_MAX_BYTES", str(16 * 1024 * 1024)))
    OUTBOUND_DEADLINE = float(os.environ.get("OUTBOUND_DEADLINE", "60"))
    # Tries of an action before its order goes to the error queue.
    ACTION_MAX_ATTEMPTS = int(os.environ.get("ACTION_MAX_ATTEMPTS", "8"))
    # Backoff of a retried action: base × 2^attempt seconds, capped, with jitter.
    ACTION_BACKOFF_BASE = float(os.environ.get("ACTION_BACKOFF_BASE", "2"))
    ACTION_BACKOFF_MAX = float(os.environ.get("ACTION_BACKOFF_MAX", "600"))
    # An action running longer than this is taken as dead (its worker was killed) and run again (seconds).
    ACTION_LEASE_SECONDS = int(os.environ.get("ACTION_LEASE_SECONDS", "120"))
    # A platform's "later" (429) is no failed attempt: the action waits Retry-After, longer with each 429 in
    # a row (the backoff above), and gives up only after this many in a row (about a day at the longest wait).
    ACTION_MAX_THROTTLES = int(os.environ.get("ACTION_MAX_THROTTLES", "150"))
    # Actions of one integration queued or running at once; the rest wait their turn in the outbox, so one
    # seller's slow platform or long backlog holds this many workers at most.
    ACTIONS_IN_FLIGHT = int(os.environ.get("ACTIONS_IN_FLIGHT", "2"))
    # How long one job may go on with its integration's next waiting actions before it hands them out
    # (seconds): what another seller's action may wait behind it, at most, on a busy worker.
    ACTION_BATCH_SECONDS = float(os.environ.get("ACTION_BATCH_SECONDS", "1"))
    # A pending action queued this long ago and still not run is queued again by the sweeper (seconds).
    OUTBOX_REQUEUE_SECONDS = int(os.environ.get("OUTBOX_REQUEUE_SECONDS", "60"))
    OUTBOX_SWEEP_BATCH = int(os.environ.get("OUTBOX_SWEEP_BATCH", "1000"))
    # Fork a work horse per job (isolation) instead of running jobs in the worker process (speed).
    WORKER_FORK = _env_bool("WORKER_FORK", False)
    # RQ job limits (seconds).
    JOB_TIMEOUT = int(os.environ.get("JOB_TIMEOUT", "600"))
    JOB_RESULT_TTL = int(os.environ.get("JOB_RESULT_TTL", "3600"))
    # -- The Orders page ------------------------------------------------------------------------------
    # How often an open Orders page asks for changes (seconds).
    ORDERS_POLL_SECONDS = int(os.environ.get("ORDERS_POLL_SECONDS", "3"))
    # Orders per page.
    ORDERS_PAGE_SIZE = int(os.environ.get("ORDERS_PAGE_SIZE", "50"))
    # The counts per status are recounted when orders changed, at most this often (seconds).
    ORDER_COUNTS_MAX_AGE = int(os.environ.get("ORDER_COUNTS_MAX_AGE", "10"))
    # An export (CSV or Excel) of at most this many orders is written at once, in the request; a larger
    # one is written by a job, with its progress on the page, and kept in the database for a day.
    EXPORT_INLINE_ROWS = int(os.environ.get("EXPORT_INLINE_ROWS", "5000"))
    # Seconds an export job may run before RQ stops it (the export is then marked failed).
    EXPORT_JOB_TIMEOUT = int(os.environ.get("EXPORT_JOB_TIMEOUT", "1800"))
    # How far back an import from a date range may reach (days; Trendyol keeps three months).
    BACKFILL_MAX_DAYS = int(os.environ.get("BACKFILL_MAX_DAYS", "90"))
    # Seconds an import may run before RQ stops it (it is then marked failed; run a shorter range).
    BACKFILL_JOB_TIMEOUT = int(os.environ.get("BACKFILL_JOB_TIMEOUT", "3600"))
    # -- Webhooks ------------------------------------------------------------------------------------
    # Between two pulls of an integration whose platforms push their changes (its webhooks registered on
    # every side it reads), at least this long: pulls then reconcile what a lost delivery missed (seconds).
    WEBHOOK_PULL_INTERVAL = int(os.environ.get("WEBHOOK_PULL_INTERVAL", "300"))
    # The largest webhook body taken (bytes): a platform's whole order, with room to spare.
    WEBHOOK_MAX_BYTES = int(os.environ.get("WEBHOOK_MAX_BYTES", str(1024 * 1024)))
    # Deliveries one integration's address takes per minute per side (flask-limiter syntax): far above a
    # real platform's, a cap on a flood.
    WEBHOOK_RATE_LIMIT = os.environ.get("WEBHOOK_RATE_LIMIT", "1200 per minute")
    # Deliveries refused (a wrong proof, an address no integration has) per address and client per minute.
    WEBHOOK_REFUSED_LIMIT = os.environ.get("WEBHOOK_REFUSED_LIMIT", "30 per minute")
    # A delivery whose order could not be read (the platform failed) is tried this many times, with
    # backoff between WEBHOOK_BACKOFF_BASE and _MAX (seconds); then the next pull brings the change.
    WEBHOOK_ATTEMPTS = int(os.environ.get("WEBHOOK_ATTEMPTS", "5"))
    WEBHOOK_BACKOFF_BASE = float(os.environ.get("WEBHOOK_BACKOFF_BASE", "2"))
    WEBHOOK_BACKOFF_MAX = float(os.environ.get("WEBHOOK_BACKOFF_MAX", "120"))
    # While a sync cycle or an import holds the integration, its deliveries wait this long, doubling each
    # time it still does, up to 30 seconds.
    WEBHOOK_BUSY_SECONDS = float(os.environ.get("WEBHOOK_BUSY_SECONDS", "1"))
    # Handled deliveries are kept this many days (the Webhooks tab shows the last one), then deleted.
    WEBHOOK_KEEP_DAYS = int(os.environ.get("WEBHOOK_KEEP_DAYS", "3"))
    # Registered webhooks are registered again this often (hours): a platform that deleted or switched off
    # one after failed deliveries gets it back, and pulls slow down only for webhooks that are there.
    WEBHOOK_RENEW_HOURS = int(os.environ.get("WEBHOOK_RENEW_HOURS", "24"))
    # -- Accounts and sessions ------------------------------------------------------------------------
    # A sign-in lasts at most this long, on the server and in the "Keep me signed in" cookie (days).
    REMEMBER_COOKIE_DURATION = timedelta(days=int(os.environ.get("REMEMBER_COOKIE_DAYS", "14")))
    REMEMBER_COOKIE_SAMESITE = "Lax"
    # Sign-ups per client address (flask-limiter syntax; every attempt counts).
    SIGNUP_RATE_LIMIT = os.environ.get("SIGNUP_RATE_LIMIT", "5 per hour")
    # Password reset requests per client address, and per account email.
    PASSWORD_RESET_RATE_LIMIT = os.environ.get("PASSWORD_RESET_RATE_LIMIT", "5 per hour")
    # Password changes tried per account: the current password is what a stolen session would guess.
    PASSWORD_CHANGE_RATE_LIMIT = os.environ.get("PASSWORD_CHANGE_RATE_LIMIT", "5 per 15 minutes")
    # Confirmation mails per account, and per address they go to (the address may be a stranger's).
    CONFIRMATION_RATE_LIMIT = os.environ.get("CONFIRMATION_RATE_LIMIT", "3 per hour")
    # Test connection calls the platforms from the web process: a handful a minute per account.
    CONNECTION_TEST_RATE_LIMIT = os.environ.get("CONNECTION_TEST_RATE_LIMIT", "10 per minute")
    # How long a password reset link works (seconds); it works once.
    PASSWORD_RESET_MAX_AGE = int(os.environ.get("PASSWORD_RESET_MAX_AGE", "3600"))
    # How long a link confirming the notification address works (seconds).
    CONFIRMATION_MAX_AGE = int(os.environ.get("CONFIRMATION_MAX_AGE", str(7 * 24 * 3600)))
    # Tries of an account mail (confirmation, reset) the SMTP server did not take, with MAIL_BACKOFF_*.
    ACCOUNT_MAIL_ATTEMPTS = int(os.environ.get("ACCOUNT_MAIL_ATTEMPTS", "5"))
    # Notification mails one account may send in 24 hours; more wait, gathered, until there is room.
    MAIL_DAILY_CAP = int(os.environ.get("MAIL_DAILY_CAP", "200"))
    # The longest error reason a notification mail quotes (characters); the panel shows it whole.
    MAIL_REASON_LENGTH = int(os.environ.get("MAIL_REASON_LENGTH", "300"))
    # -- Order Notifications ------------------------------------------------------------------------
    # The SMTP server the notification mails go through; the default is the local sink `make run` starts.
    MAIL_SERVER = os.environ.get("MAIL_SERVER", "127.0.0.1")
    MAIL_PORT = int(os.environ.get("MAIL_PORT", "8025"))
    MAIL_USE_TLS = _env_bool("MAIL_USE_TLS", False)
    MAIL_USE_SSL = _env_bool("MAIL_USE_SSL", False)
    MAIL_USERNAME: str | None = os.environ.get("MAIL_USERNAME")
    MAIL_PASSWORD: str | None = os.environ.get("MAIL_PASSWORD")
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "Order Hub <notifications@orderhub.local>")
    # Flask-Mail would not send while testing; the tests send to a real SMTP server.
    MAIL_SUPPRESS_SEND = False
    # An integration sends at most one mail per kind within this window; it lists everything in it (seconds).
    NOTIFY_WINDOW_SECONDS = int(os.environ.get("NOTIFY_WINDOW_SECONDS", "300"))
    # Backoff of a mail the SMTP server did not take: base × 2^attempt seconds, capped, with jitter.
    MAIL_BACKOFF_BASE = float(os.environ.get("MAIL_BACKOFF_BASE", "30"))
    MAIL_BACKOFF_MAX = float(os.environ.get("MAIL_BACKOFF_MAX", "3600"))
    # Seconds one mail may take to send before its job is stopped and the mail tried again.
    MAIL_JOB_TIMEOUT = int(os.environ.get("MAIL_JOB_TIMEOUT", "60"))
    # The panel's address as sellers reach it, for the links in the mails.
    PUBLIC_URL = os.environ.get("PUBLIC_URL", f"http://127.0.0.1:{os.environ.get('HUB_PORT', '5000')}")
    # Where the local SMTP sink keeps what it receives; the panel shows those mails (development only).
    MAIL_SINK_DIR: str | None = os.environ.get("MAIL_SINK_DIR", str(INSTANCE / "mail"))
    # `flask seed-demo` may create the demo account (never in production).
    DEMO_SEED_ALLOWED = True
    DEMO_EMAIL = os.environ.get("DEMO_EMAIL", "demo@example.com")
    DEMO_PASSWORD = os.environ.get("DEMO_PASSWORD", "demo1234")
    # Where the demo integration finds the local sandbox marketplace and shop.
    SANDBOX_URL = SANDBOX_URL_DEFAULT
    # How often the demo integration pulls (seconds); a new integration pulls every 60.
    DEMO_PULL_INTERVAL = int(os.environ.get("DEMO_PULL_INTERVAL", "10"))

    def __init__(self) -> None:
        if not self.SECRET_KEY or not self.CREDENTIALS_KEY:
            keys = _local_keys()
            self.SECRET_KEY = self.SECRET_KEY or keys["SECRET_KEY"]
            self.CREDENTIALS_KEY = self.CREDENTIALS_KEY or keys["CREDENTIALS_KEY"]
        if not self.REDIS_URL:
            self.REDIS_URL = f"redis://127.0.0.1:{self.EMBEDDED_REDIS_PORT}/0"
        if not self.RATELIMIT_STORAGE_URI:
            self.RATELIMIT_STORAGE_URI = self.REDIS_URL


class ProductionConfig(Config):
    """Real secrets, a real database and Redis; no demo data."""

    DEMO_SEED_ALLOWED = False
    OUTBOUND_HTTPS_ONLY = _env_bool("OUTBOUND_HTTPS_ONLY", True)
    OUTBOUND_ALLOWLIST = os.environ.get("OUTBOUND_ALLOWLIST", "")
    MAIL_SINK_DIR = os.environ.get("MAIL_SINK_DIR")  # no mail viewer unless asked for
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", True)
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE

    def __init__(self) -> None:
        missing = [
            name
            for name in ("SECRET_KEY", "CREDENTIALS_KEY", "DATABASE_URL", "REDIS_URL")
            if not os.environ.get(name)
        ]
        if missing:
            raise RuntimeError(f"production needs these environment variables: {', '.join(missing)}")
        super().__init__()


class TestConfig(Config):
    """Per-test database; CSRF and the rate limit stay on so the tests see them."""

    TESTING = True
    SECRET_KEY = "test-secret-key"
    CREDENTIALS_KEY = Fernet.generate_key().decode()
    SQLALCHEMY_DATABASE_URI = _database_url(os.environ.get("TEST_DATABASE_URL") or "sqlite://")
    RATELIMIT_STORAGE_URI = "memory://"
    PUBLIC_URL = "http://hub.test"
    MAIL_SINK_DIR = None
    # The sandbox and the tests' fake platforms listen on loopback ports chosen at random.
    OUTBOUND_ALLOWLIST = "127.0.0.1"


CONFIGS: dict[str, type[Config]] = {"development": Config, "production": ProductionConfig}


def config_from_env() -> Config:
    """The config named by HUB_ENV (development or production; default development)."""
    name = os.environ.get("HUB_ENV", "development")
    try:
        return CONFIGS[name]()
    except KeyError:
        raise RuntimeError(f"HUB_ENV must be one of {', '.join(CONFIGS)}, not {name!r}") from None
