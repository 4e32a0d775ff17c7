"""The General settings page: every section saves on its own (HTMX) or all at once, under the page's rules."""

from __future__ import annotations

import pytest

from blueprints.integrations.forms import SECTIONS
from extensions import db
from models import Account, Integration
from sync.settings import Priority, TrackingCodeSource
from sync.statuses import CanonicalStatus
from tests.conftest import Client

# A change in every section, as the browser posts it, and what it must store.
SECTION_CHANGES: dict[str, tuple[dict[str, str], dict[str, object]]] = {
    "communication": (
        {"tracking_code_transfer": "y", "status_change_transfer": "y"},
        {"cancellation_transfer": False, "tracking_code_transfer": True},
    ),
    "feedback": (
        {"approval_feedback": "y", "update_feedback": "y"},
        {"approval_feedback": True, "update_feedback": True},
    ),
    "priority": (
        {"reverse_flow": "y", "priority": "shop"},
        {"reverse_flow": True, "priority": Priority.SHOP},
    ),
    "activation": ({"retrieve_orders": "y"}, {"retrieve_orders": True, "auto_transfer": False}),
    "notifications": ({"notify_new_orders": "y"}, {"notify_new_orders": True, "notify_error_orders": False}),
    "colors": (
        {
            "row_color_coding": "y",
            "color_coding_rate": "55",
            **{f"color_{status.value}": "#123abc" for status in CanonicalStatus},
        },
        {"row_color_coding": True, "status_color_coding": False, "color_coding_rate": 55},
    ),
    "stock": ({"decrease_stock": "y"}, {"decrease_stock": True}),
    "tracking_code": (
        {"tracking_code_source": "shipment_barcode"},
        {"tracking_code_source": TrackingCodeSource.SHIPMENT_BARCODE},
    ),
    "tracking_link": ({"force_tracking_link": "y"}, {"force_tracking_link": True}),
    "shipping_vat": ({"shipping_vat_rate": "10"}, {"shipping_vat_rate": 10}),
}


@pytest.fixture
def with_email(account: Account) -> Account:
    account.notification_email = "orders@example.com"
    db.session.commit()
    return account


def test_every_section_is_covered() -> None:
    assert set(SECTION_CHANGES) == set(SECTIONS)


def test_page_shows_every_setting_with_its_label_and_help(seller: Client, integration: Integration) -> None:
    page = seller.get(f"/integrations/{integration.id}/general").get_data(as_text=True)
    for title in (
        "Communication Options",
        "Marketplace Feedback",
        "Transaction Priority",
        "Activation",
        "Order Notifications",
        "Color Coding",
        "Stock Management",
        "Shipment Tracking Code",
        "Forcing Shipment Transfer Link",
        "Shipment VAT Selection",
    ):
        assert title in page
    for label in (
        "Shipment Tracking Code Transfer",
        "Status Change Transfer",
        "Cancellation Status Transfer",
        "Addition/Approval Feedback",
        "Update Feedback",
        "Reverse Flow Direction",
        "Marketplace first",
        "E-commerce first",
        "Retrieve Marketplace Orders",
        "Automatic E-commerce Order Transfer",
        "Newly Added Orders",
        "Orders in Error Status",
        "Status Color Coding",
        "Status Row Color Coding",
        "Color Coding Rate",
        "Decrease stock of ordered products",
        "Tracking number",
        "Shipment barcode",
        "Shipment package number",
        "The product's own VAT",
        "20%",
        "Cancelled",
    ):
        assert label in page, label
    assert page.count('class="help"') >= 18
    assert 'id="save-all"' in page


@pytest.mark.parametrize("section", SECTION_CHANGES)
def test_each_section_saves_on_its_own_through_htmx(
    seller: Client, integration: Integration, with_email: Account, section: str
) -> None:
    posted, expected = SECTION_CHANGES[section]
    before = integration.settings.to_domain()
    # htmx posts the whole page's form: the other sections' changes ride along and must be ignored.
    whole_page = {name: value for changes, _ in SECTION_CHANGES.values() for name, value in changes.items()}
    response = seller.post(
        f"/integrations/{integration.id}/general/{section}", data={**whole_page, **posted}, htmx=True
    )
    assert response.status_code == 200
    fragment = response.get_data(as_text=True)
    assert fragment.lstrip().startswith(f'<article id="section-{section}"')
    assert "Saved" in fragment
    assert 'id="settings-changes" hx-swap-oob="true"' in fragment
    db.session.expire_all()
    after = integration.settings.to_domain()
    for name, value in expected.items():
        assert getattr(after, name) == value, name
    # Nothing outside the section moved.
    names = set(SECTIONS[section].form_class().settings_values())
    for name in set(vars(before)) - names:
        assert getattr(after, name) == getattr(before, name), name


def test_colors_section_saves_the_status_colours(seller: Client, integration: Integration) -> None:
    posted, _ = SECTION_CHANGES["colors"]
    response = seller.post(f"/integrations/{integration.id}/general/colors", data=posted, htmx=True)
    assert response.status_code == 200
    db.session.expire_all()
    assert set(integration.status_color_map().values()) == {"#123abc"}


INVALID = [
    ("colors", {"color_coding_rate": "101"}, "Enter a rate from 0 to 100."),
    ("colors", {"color_coding_rate": "-1"}, "Enter a rate from 0 to 100."),
    ("colors", {"color_coding_rate": "lots"}, "Enter a rate from 0 to 100."),
    ("colors", {"color_Created": "red"}, "Enter a colour as #RRGGBB"),
    ("colors", {"color_Shipped": "#12345g"}, "Enter a colour as #RRGGBB"),
    ("colors", {"color_Shipped": "#123456\n"}, "Enter a colour as #RRGGBB"),
    (
        "shipping_vat",
        {"shipping_vat_rate": "7"},
        "Choose the product's own VAT or one of 0 %, 1 %, 10 %, 20 %.",
    ),
    ("shipping_vat", {"shipping_vat_rate": "ten"}, "Choose the product's own VAT"),
    ("tracking_code", {"tracking_code_source": "carrier_id"}, "Choose tracking number, shipment barcode or"),
    ("priority", {"priority": "whoever"}, "Choose marketplace first or e-commerce first."),
]


@pytest.mark.parametrize(("section", "change", "message"), INVALID)
def test_invalid_values_get_a_clear_message_and_save_nothing(
    seller: Client, integration: Integration, section: str, change: dict[str, str], message: str
) -> None:
    posted = {**SECTION_CHANGES[section][0], **change}
    before = integration.settings.to_domain()
    colors_before = integration.status_color_map()
    response = seller.post(f"/integrations/{integration.id}/general/{section}", data=posted, htmx=True)
    assert response.status_code == 422
    fragment = response.get_data(as_text=True)
    assert message in fragment
    assert "Not saved" in fragment
    assert fragment.count(message) == 1
    db.session.expire_all()
    assert integration.settings.to_domain() == before
    assert integration.status_color_map() == colors_before
    assert integration.latest_changes(5) == []


@pytest.mark.parametrize(
    ("section", "posted"),
    [
        ("feedback", {"approval_feedback": "y"}),
        ("feedback", {"update_feedback": "y"}),
        ("priority", {"reverse_flow": "y", "priority": "marketplace"}),
        ("priority", {"priority": "shop"}),
    ],
)
def test_own_shipping_rule_refuses_a_forced_post(
    seller: Client, account: Account, section: str, posted: dict[str, str]
) -> None:
    from tests.conftest import make_integration

    integration = make_integration(account, own_shipping_agreement=False)
    page = seller.get(f"/integrations/{integration.id}/general").get_data(as_text=True)
    assert "Available only with your own shipping agreement." in page  # the controls explain why
    response = seller.post(f"/integrations/{integration.id}/general/{section}", data=posted, htmx=True)
    assert response.status_code == 422
    fragment = response.get_data(as_text=True)
    # Each of the section's two guarded controls gives the reason once: as its error or as its lock.
    assert fragment.count("Available only with your own shipping agreement.") == 2
    assert f'href="/integrations/{integration.id}/edit"' in fragment
    db.session.expire_all()
    settings = integration.settings
    assert not settings.approval_feedback and not settings.update_feedback and not settings.reverse_flow
    assert settings.priority is Priority.MARKETPLACE


def test_notification_rule_refuses_without_an_email_and_links_to_user_settings(
    seller: Client, integration: Integration
) -> None:
    response = seller.post(
        f"/integrations/{integration.id}/general/notifications", data={"notify_error_orders": "y"}, htmx=True
    )
    assert response.status_code == 422
    fragment = response.get_data(as_text=True)
    assert "Add a notification email address in User Settings first." in fragment
    assert 'href="/settings"' in fragment
    db.session.expire_all()
    assert integration.settings.notify_error_orders is False


def test_whole_page_save_stores_every_section(
    seller: Client, integration: Integration, with_email: Account
) -> None:
    posted = {key: value for data, _ in SECTION_CHANGES.values() for key, value in data.items()}
    response = seller.post(f"/integrations/{integration.id}/general", data=posted)
    assert response.status_code == 302
    db.session.expire_all()
    settings = integration.settings.to_domain()
    for _, expected in SECTION_CHANGES.values():
        for name, value in expected.items():
            assert getattr(settings, name) == value, name
    page = seller.get(response.headers["Location"]).get_data(as_text=True)
    assert "General settings are saved." in page


def test_whole_page_save_is_all_or_nothing(
    seller: Client, integration: Integration, with_email: Account
) -> None:
    posted = {key: value for data, _ in SECTION_CHANGES.values() for key, value in data.items()}
    posted["shipping_vat_rate"] = "7"
    response = seller.post(f"/integrations/{integration.id}/general", data=posted)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Nothing was saved" in page and "Choose the product's own VAT" in page
    assert 'value="55"' in page  # the seller's input is kept for correction
    db.session.expire_all()
    assert integration.settings.decrease_stock is False
    assert integration.latest_changes(5) == []


def test_section_save_without_javascript_redirects_back(seller: Client, integration: Integration) -> None:
    response = seller.post(f"/integrations/{integration.id}/general/stock", data={"decrease_stock": "y"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/integrations/{integration.id}/general"
    response = seller.post(
        f"/integrations/{integration.id}/general/colors", data={"color_coding_rate": "500"}
    )
    assert response.status_code == 422
    assert "<html" in response.get_data(as_text=True)
    db.session.expire_all()
    assert integration.settings.decrease_stock is True


def test_changes_are_recorded_and_shown(seller: Client, integration: Integration, account: Account) -> None:
    seller.post(
        f"/integrations/{integration.id}/general/shipping_vat", data={"shipping_vat_rate": "20"}, htmx=True
    )
    response = seller.post(
        f"/integrations/{integration.id}/general/tracking_code",
        data={"tracking_code_source": "package_number"},
        htmx=True,
    )
    fragment = response.get_data(as_text=True)
    assert "The product&#39;s own VAT → 20%" in fragment
    assert "Tracking number → Shipment package number" in fragment
    assert account.email in fragment
    change = integration.latest_changes(1)[0]
    assert (change.field, change.old_value, change.new_value) == (
        "tracking_code_source",
        "tracking_number",
        "package_number",
    )


def test_statuses_tab_is_prefilled_and_saves_the_map(seller: Client, integration: Integration) -> None:
    page = seller.get(f"/integrations/{integration.id}/statuses").get_data(as_text=True)
    assert 'aria-current="page">Statuses' in page
    data = {f"status_{status.value}": shop for status, shop in integration.status_map().items()}
    data["status_Shipped"] = "on-hold"
    assert seller.post(f"/integrations/{integration.id}/statuses", data=data).status_code == 302
    db.session.expire_all()
    assert integration.status_map()[CanonicalStatus.SHIPPED] == "on-hold"
    assert [change.field for change in integration.latest_changes(5)] == ["status_map:Shipped"]
    history = seller.get(f"/integrations/{integration.id}/general").get_data(as_text=True)
    assert "Shop status for Shipped" in history


def test_statuses_tab_refuses_a_status_the_shop_does_not_know(
    seller: Client, integration: Integration
) -> None:
    data = {f"status_{status.value}": shop for status, shop in integration.status_map().items()}
    data["status_Shipped"] = "teleported"
    response = seller.post(f"/integrations/{integration.id}/statuses", data=data)
    assert response.status_code == 422 and "Not a valid choice" in response.get_data(as_text=True)
    db.session.expire_all()
    assert integration.status_map()[CanonicalStatus.SHIPPED] == "completed"
