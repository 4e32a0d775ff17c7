"""Products: list, add and edit by hand, import an XML feed. Scoped to the signed-in account."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy.exc import IntegrityError

from blueprints.products import bp
from blueprints.products.feed import FeedError, read_feed
from blueprints.products.forms import ImportForm, ProductForm
from extensions import db
from models import Product

PAGE_SIZE = 200
SEARCH_LENGTH = 100


@bp.before_request
@login_required
def require_login() -> None:
    """Every page of this blueprint needs a signed-in seller."""


def _account_id() -> int:
    return int(current_user.id)


def _get_product(product_id: int) -> Product:
    product = db.session.scalar(
        sa.select(Product).where(Product.id == product_id, Product.account_id == _account_id())
    )
    if product is None:
        abort(404)
    return product


@bp.get("")
def list_products() -> ResponseReturnValue:
    """Products with their panel stock; search by barcode, stock code or name."""
    query = sa.select(Product).where(Product.account_id == _account_id())
    # PostgreSQL refuses NUL in a text, and no product holds one.
    search = request.args.get("q", "").replace("\x00", "").strip()[:SEARCH_LENGTH]
    if search:
        pattern = f"%{search}%"
        query = query.where(
            sa.or_(
                Product.barcode.ilike(pattern), Product.stock_code.ilike(pattern), Product.name.ilike(pattern)
            )
        )
    products = db.session.scalars(query.order_by(Product.name, Product.id).limit(PAGE_SIZE)).all()
    return render_template("products/list.html", products=products, search=search, page_size=PAGE_SIZE)


@bp.route("/new", methods=["GET", "POST"])
def create_product() -> ResponseReturnValue:
    """Add a product by hand."""
    form = ProductForm()
    if form.validate_on_submit() and _barcode_free(form, None):
        product = Product(account_id=_account_id())
        _fill(product, form)
        db.session.add(product)
        if _saved(form, None):
            flash(_("Product “%(name)s” is added.", name=product.name), "success")
            return redirect(url_for("products.list_products"))
    return render_template("products/form.html", form=form, product=None), 422 if form.errors else 200


@bp.route("/<id:product_id>/edit", methods=["GET", "POST"])
def edit_product(product_id: int) -> ResponseReturnValue:
    """Edit a product, its stock included."""
    product = _get_product(product_id)
    form = ProductForm(obj=product)
    if request.method == "GET":
        form.vat_rate.data = product.vat_rate
    if form.validate_on_submit() and _barcode_free(form, product):
        _fill(product, form)
        if _saved(form, product):
            flash(_("Product “%(name)s” is saved.", name=product.name), "success")
            return redirect(url_for("products.list_products"))
    return render_template("products/form.html", form=form, product=product), 422 if form.errors else 200


@bp.route("/import", methods=["GET", "POST"])
def import_products() -> ResponseReturnValue:
    """Import an XML product feed: new barcodes are added, known ones updated; a bad file changes nothing."""
    form = ImportForm()
    problems: list[str] = []
    if form.validate_on_submit():
        try:
            products, problems = read_feed(form.feed.data.read())
        except FeedError as error:
            problems = [str(error)]
        else:
            if not problems:
                added, updated = _upsert(products)
                try:
                    db.session.commit()
                except IntegrityError:
                    # A product of the feed was added meanwhile (another import, the same file sent twice):
                    # nothing of this one is kept, and the next try finds it and updates it.
                    db.session.rollback()
                    problems = [_("Some of these products were added meanwhile; import the file again.")]
                else:
                    flash(
                        _(
                            "Feed imported: %(added)d added, %(updated)d updated.",
                            added=added,
                            updated=updated,
                        ),
                        "success",
                    )
                    return redirect(url_for("products.list_products"))
        flash(_("Nothing was imported: correct the file and try again."), "error")
    status = 422 if form.errors or problems else 200
    return render_template("products/import.html", form=form, problems=problems), status


def _saved(form: ProductForm, product: Product | None) -> bool:
    """Commit; when the same barcode was saved meanwhile (the form sent twice at once), the check above
    could not see it, and the database refuses it: the answer is the same as the check's."""
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if _barcode_free(form, product):
            raise  # another constraint: a bug, not the seller's doing
        return False
    return True


def _barcode_free(form: ProductForm, product: Product | None) -> bool:
    query = sa.select(Product.id).where(
        Product.account_id == _account_id(), Product.barcode == form.barcode.data
    )
    if product is not None:
        query = query.where(Product.id != product.id)
    if db.session.scalar(query) is None:
        return True
    form.barcode.errors = [*form.barcode.errors, _("You already have a product with this barcode.")]
    return False


def _fill(product: Product, form: ProductForm) -> None:
    product.barcode = form.barcode.data or ""
    product.stock_code = form.stock_code.data or ""
    product.name = form.name.data or ""
    product.stock = form.stock.data or 0
    product.price = form.price.data
    product.vat_rate = form.vat_rate.data


def _upsert(rows: list) -> tuple[int, int]:
    existing = {
        product.barcode: product
        for product in db.session.scalars(
            sa.select(Product).where(
                Product.account_id == _account_id(), Product.barcode.in_([row.barcode for row in rows])
            )
        )
    }
    added = 0
    for row in rows:
        product = existing.get(row.barcode)
        if product is None:
            product = Product(account_id=_account_id(), barcode=row.barcode)
            db.session.add(product)
            added += 1
        product.stock_code, product.name, product.stock = row.stock_code, row.name, row.stock
        product.price, product.vat_rate = row.price, row.vat_rate
    return added, len(rows) - added
