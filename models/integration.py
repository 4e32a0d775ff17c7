"""An integration: one marketplace account joined to one shop, its General settings and their history."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from flask_babel.speaklater import LazyString
from sqlalchemy.orm import Mapped, WriteOnlyMapped, mapped_column, relationship

from connectors.registry import KINDS, ConnectorKind, Side
from extensions import Model, db
from models.base import UTCDateTime, utcnow
from models.crypto import decrypt_json, encrypt_json
from sync.settings import DEFAULTS, SHIPPING_VAT_RATES, GeneralSettings, Priority, TrackingCodeSource, without
from sync.statuses import CanonicalStatus

# How the change history names what it cannot show: a replaced secret, a status colour.
REPLACED = "replaced"
COLOR_CHANGE_PREFIX = "color:"
STATUS_MAP_CHANGE_PREFIX = "status_map:"


def _enum(enum: type[StrEnum], name: str) -> sa.Enum:
    return sa.Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [member.value for member in members],
    )


class Integration(Model):
    __tablename__ = "integrations"
    __table_args__ = (sa.UniqueConstraint("account_id", "name", name="uq_integrations_account_id_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    marketplace_kind: Mapped[str] = mapped_column(sa.String(32))
    marketplace_base_url: Mapped[str] = mapped_column(sa.String(500))
    marketplace_credentials_encrypted: Mapped[str | None] = mapped_column(sa.Text)
    shop_kind: Mapped[str] = mapped_column(sa.String(32))
    shop_base_url: Mapped[str] = mapped_column(sa.String(500))
    shop_credentials_encrypted: Mapped[str | None] = mapped_column(sa.Text)
    own_shipping_agreement: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    # The pull: every `pull_interval` seconds, from `pull_cursor` (the newest lastModified seen).
    pull_interval: Mapped[int] = mapped_column(default=60)
    pull_cursor: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Where a pull that ran out of its budget (or failed half way) goes on from, oldest first, no overlap.
    pull_resume_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When a pull last started to read PULL_OVERLAP_SECONDS before the cursor again (sync/pull.py).
    pull_overlap_read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    shop_cursor: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the reverse flow's
    next_pull_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_pull_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_pull_error: Mapped[str | None] = mapped_column(sa.Text)
    last_pull_error_category: Mapped[str | None] = mapped_column(sa.String(32))
    pull_failures: Mapped[int] = mapped_column(default=0)
    # While one worker syncs this integration, no other does.
    pull_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Webhooks: the integration's address at the hub (/webhooks/<token>/<side>, not a secret: the platforms
    # prove themselves with the secret, which is), and what each side registered, when.
    webhook_token: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    webhook_secret_encrypted: Mapped[str | None] = mapped_column(sa.Text)
    marketplace_webhooks: Mapped[str | None] = mapped_column(sa.String(500))
    marketplace_webhooks_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    shop_webhooks: Mapped[str | None] = mapped_column(sa.String(500))
    shop_webhooks_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Deliveries refused for a wrong proof: how many, the last one's time (a secret changed elsewhere).
    webhooks_refused: Mapped[int] = mapped_column(default=0)
    webhook_refused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A shop connected on its own consent page (OAuth2: IdeaSoft): its tokens, kept apart from the keys the
    # seller enters (a refresh and a saved form never write over each other), and when it was connected.
    shop_tokens_encrypted: Mapped[str | None] = mapped_column(sa.Text)
    shop_connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The shop's statuses as it names them (its custom ones too), read from the shop: status → name.
    shop_status_names: Mapped[dict[str, str] | None] = mapped_column(sa.JSON)
    shop_statuses_read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    settings: Mapped[IntegrationSettings] = relationship(
        back_populates="integration", cascade="all, delete-orphan", passive_deletes=True
    )
    status_colors: Mapped[list[StatusColor]] = relationship(
        back_populates="integration", cascade="all, delete-orphan", passive_deletes=True
    )
    status_maps: Mapped[list[StatusMap]] = relationship(
        back_populates="integration", cascade="all, delete-orphan", passive_deletes=True
    )
    changes: WriteOnlyMapped[SettingsChange] = relationship(
        back_populates="integration", cascade="all, delete-orphan", passive_deletes=True
    )

    def latest_changes(self, limit: int) -> list[SettingsChange]:
        return list(db.session.scalars(self.changes.select().order_by(SettingsChange.id.desc()).limit(limit)))

    @property
    def marketplace(self) -> ConnectorKind:
        return self.kind(Side.MARKETPLACE)

    @property
    def shop(self) -> ConnectorKind:
        return self.kind(Side.SHOP)

    def kind(self, side: Side) -> ConnectorKind:
        key = self.marketplace_kind if side is Side.MARKETPLACE else self.shop_kind
        return KINDS[side][key]

    def credentials(self, side: Side) -> dict[str, str]:
        """Decrypted credentials of one side; for connectors, never for templates."""
        return decrypt_json(getattr(self, f"{side}_credentials_encrypted"))

    def set_credentials(self, side: Side, values: dict[str, str]) -> None:
        setattr(self, f"{side}_credentials_encrypted", encrypt_json(values))

    def unavailable(self) -> dict[str, LazyString]:
        """The General settings the marketplace's or the shop's API cannot carry out, each with why."""
        return {**self.marketplace.unavailable, **self.shop.unavailable}

    def webhook_secret(self) -> str:
        """The secret the platforms sign (or authenticate) the webhooks with, made at the first
        registration; for connectors and the intake, never for templates."""
        return decrypt_json(self.webhook_secret_encrypted).get("secret", "")

    def webhooks_at(self, side: Side) -> datetime | None:
        """When this side's webhooks were registered (None: the side is read by pulls only)."""
        moment: datetime | None = getattr(self, f"{side}_webhooks_at")
        return moment

    def forget_webhooks(self, side: Side) -> None:
        """This side's webhooks are no longer known to reach the hub (its platform refused them again)."""
        setattr(self, f"{side}_webhooks", None)
        setattr(self, f"{side}_webhooks_at", None)

    def platform_changed(self, side: Side) -> None:
        """Another account or another shop on this side: what the hub learnt from the old one goes (the
        shop's statuses, its tokens), and so do the webhooks' address and secret, which the old platform
        may go on using; both sides' webhooks are registered again with new ones. Unless the other side's
        platform sets its webhooks up only on request (Hepsiburada's ticket): the hub cannot point it at a
        new address, so the address stays, and only this side's registration goes (what the old platform
        may still send names orders the hub reads from the new one: a hint, never a change by itself)."""
        if side is Side.SHOP:
            self.shop_status_names = self.shop_statuses_read_at = None
            self.shop_tokens_encrypted = self.shop_connected_at = None  # connected again, to the new one
        other = Side.SHOP if side is Side.MARKETPLACE else Side.MARKETPLACE
        intake = self.kind(other).webhooks
        if intake is not None and intake.by_request is not None and self.webhooks_at(other) is not None:
            self.forget_webhooks(side)
            return
        for each in Side:
            self.forget_webhooks(each)
        self.webhook_token = self.webhook_secret_encrypted = None

    def shop_status_choices(self) -> dict[str, str]:
        """The shop statuses the seller can choose from: as read from the shop, else the kind's own set;
        a status the seller chose before that the shop no longer lists stays, so nothing is lost."""
        names = {key: str(value) for key, value in self.shop.shop_statuses.items()}
        if self.shop_status_names:
            names = dict(self.shop_status_names)
        for chosen in self.status_map().values():
            names.setdefault(chosen, chosen)
        return names

    def shop_status_name(self, status: str) -> str:
        """A shop status as the seller knows it: the shop's own name where it was read."""
        if self.shop_status_names and status in self.shop_status_names:
            return self.shop_status_names[status]
        return self.shop.status_name(status)

    def status_color_map(self) -> dict[CanonicalStatus, str]:
        colors = dict(self.kind(Side.MARKETPLACE).status_colors)
        colors.update({CanonicalStatus(row.status): row.color for row in self.status_colors})
        return colors

    def status_map(self) -> dict[CanonicalStatus, str]:
        """Canonical status → shop status: the shop's defaults with the seller's choices over them."""
        mapping = dict(self.shop.default_status_map)
        mapping.update({CanonicalStatus(row.status): row.shop_status for row in self.status_maps})
        return mapping

    def change_status_map(self, mapping: dict[CanonicalStatus, str], actor: str) -> list[str]:
        """Set the shop status of each canonical status, recording each real change."""
        return self._change_overrides(
            self.status_maps,
            StatusMap,
            "shop_status",
            self.status_map(),
            mapping,
            STATUS_MAP_CHANGE_PREFIX,
            actor,
        )

    def log_change(self, actor: str, field: str, old: object, new: object) -> None:
        self.updated_at = utcnow()
        self.changes.add(
            SettingsChange(actor=actor, field=field, old_value=_as_text(old), new_value=_as_text(new))
        )

    def change_settings(self, values: dict[str, object], actor: str) -> list[str]:
        """Apply General settings, record each real change, and return the names that changed."""
        changed = []
        for name, value in values.items():
            old = getattr(self.settings, name)
            if old != value:
                setattr(self.settings, name, value)
                self.log_change(actor, name, old, value)
                changed.append(name)
        return changed

    def change_status_colors(self, colors: dict[CanonicalStatus, str], actor: str) -> list[str]:
        """Set the colour of each canonical status, recording each real change."""
        return self._change_overrides(
            self.status_colors,
            StatusColor,
            "color",
            self.status_color_map(),
            colors,
            COLOR_CHANGE_PREFIX,
            actor,
        )

    def _change_overrides(
        self,
        rows: list[Any],
        row_class: type[StatusColor] | type[StatusMap],
        attribute: str,
        effective: dict[CanonicalStatus, str],
        wanted: dict[CanonicalStatus, str],
        prefix: str,
        actor: str,
    ) -> list[str]:
        """Per-status choices over a default (colours, shop statuses): a row for each status the seller
        changed, each real change recorded; returns the statuses that changed."""
        by_status = {CanonicalStatus(row.status): row for row in rows}
        changed = []
        for status, value in wanted.items():
            if effective.get(status) == value:
                continue
            row = by_status.get(status)
            if row is None:
                rows.append(row_class(status=status.value, **{attribute: value}))
            else:
                setattr(row, attribute, value)
            self.log_change(actor, prefix + status.value, effective.get(status), value)
            changed.append(status.value)
        return changed


class IntegrationSettings(Model):
    """The General page, one typed column per setting; defaults come from `sync.settings.DEFAULTS`."""

    __tablename__ = "integration_settings"
    __table_args__ = (
        sa.CheckConstraint("color_coding_rate BETWEEN 0 AND 100", name="color_coding_rate_range"),
        sa.CheckConstraint(
            f"shipping_vat_rate IS NULL OR shipping_vat_rate IN {SHIPPING_VAT_RATES}",
            name="shipping_vat_rate_choice",
        ),
    )

    integration_id: Mapped[int] = mapped_column(
        sa.ForeignKey("integrations.id", ondelete="CASCADE"), primary_key=True
    )
    integration: Mapped[Integration] = relationship(back_populates="settings")

    tracking_code_transfer: Mapped[bool] = mapped_column(default=DEFAULTS.tracking_code_transfer)
    status_change_transfer: Mapped[bool] = mapped_column(default=DEFAULTS.status_change_transfer)
    cancellation_transfer: Mapped[bool] = mapped_column(default=DEFAULTS.cancellation_transfer)
    approval_feedback: Mapped[bool] = mapped_column(default=DEFAULTS.approval_feedback)
    update_feedback: Mapped[bool] = mapped_column(default=DEFAULTS.update_feedback)
    reverse_flow: Mapped[bool] = mapped_column(default=DEFAULTS.reverse_flow)
    priority: Mapped[Priority] = mapped_column(_enum(Priority, "priority"), default=DEFAULTS.priority)
    retrieve_orders: Mapped[bool] = mapped_column(default=DEFAULTS.retrieve_orders)
    auto_transfer: Mapped[bool] = mapped_column(default=DEFAULTS.auto_transfer)
    notify_new_orders: Mapped[bool] = mapped_column(default=DEFAULTS.notify_new_orders)
    notify_error_orders: Mapped[bool] = mapped_column(default=DEFAULTS.notify_error_orders)
    status_color_coding: Mapped[bool] = mapped_column(default=DEFAULTS.status_color_coding)
    row_color_coding: Mapped[bool] = mapped_column(default=DEFAULTS.row_color_coding)
    color_coding_rate: Mapped[int] = mapped_column(default=DEFAULTS.color_coding_rate)
    decrease_stock: Mapped[bool] = mapped_column(default=DEFAULTS.decrease_stock)
    tracking_code_source: Mapped[TrackingCodeSource] = mapped_column(
        _enum(TrackingCodeSource, "tracking_code_source"), default=DEFAULTS.tracking_code_source
    )
    force_tracking_link: Mapped[bool] = mapped_column(default=DEFAULTS.force_tracking_link)
    shipping_vat_rate: Mapped[int | None] = mapped_column(default=DEFAULTS.shipping_vat_rate)

    def to_domain(self) -> GeneralSettings:
        """A plain, frozen copy for the rules and the pipeline; a setting the marketplace's API cannot
        carry out is off, whatever is stored."""
        settings = self.as_saved()
        unavailable = self.integration.unavailable() if self.integration is not None else {}
        if not unavailable:
            return settings
        return GeneralSettings(**{**self._values(), **without(settings, unavailable)})

    def as_saved(self) -> GeneralSettings:
        """The settings as stored."""
        return GeneralSettings(**self._values())

    def _values(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(GeneralSettings)}

    @classmethod
    def defaults(cls) -> IntegrationSettings:
        return cls(**dataclasses.asdict(DEFAULTS))


class StatusColor(Model):
    """A colour the seller chose for one canonical status; absent rows use the marketplace default."""

    __tablename__ = "status_colors"
    __table_args__ = (
        sa.UniqueConstraint("integration_id", "status", name="uq_status_colors_integration_status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    integration_id: Mapped[int] = mapped_column(sa.ForeignKey("integrations.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(sa.String(32))
    color: Mapped[str] = mapped_column(sa.String(7))
    integration: Mapped[Integration] = relationship(back_populates="status_colors")


class StatusMap(Model):
    """The shop status the seller chose for one canonical status (Statuses tab); absent: the default."""

    __tablename__ = "status_maps"
    __table_args__ = (
        sa.UniqueConstraint("integration_id", "status", name="uq_status_maps_integration_status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    integration_id: Mapped[int] = mapped_column(sa.ForeignKey("integrations.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(sa.String(32))
    shop_status: Mapped[str] = mapped_column(sa.String(32))
    integration: Mapped[Integration] = relationship(back_populates="status_maps")


class SettingsChange(Model):
    """One recorded change to an integration: who, when, which field, old and new value."""

    __tablename__ = "settings_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    integration_id: Mapped[int] = mapped_column(
        sa.ForeignKey("integrations.id", ondelete="CASCADE"), index=True
    )
    actor: Mapped[str] = mapped_column(sa.String(254))
    field: Mapped[str] = mapped_column(sa.String(64))
    old_value: Mapped[str] = mapped_column(sa.Text)
    new_value: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    integration: Mapped[Integration] = relationship(back_populates="changes")


def _as_text(value: object) -> str:
    """Stored form of a setting value; `blueprints.integrations.labels` turns it back into words."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, StrEnum):
        return value.value
    return str(value)
