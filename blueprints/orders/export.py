"""Orders > Orders > Export: the orders of the view (its filters, every page) as a CSV or an Excel file,
read a thousand at a time, so a big seller's export runs in flat memory.

Both formats have the columns of `COLUMNS`. The CSV is written as the page's language writes numbers and
as its spreadsheets read them: in Turkish, fields separated by ";" and decimals with a comma (Excel's
Turkish list separator), in English "," and a dot; UTF-8 with a byte order mark, so Excel reads Turkish
letters. The Excel file holds real numbers and dates, which the spreadsheet shows in its own language.
Times are the panel's time zone. A text that starts like a formula (=, +, -, @) is kept as text (in the
CSV behind an apostrophe, in Excel marked as text, as typing an apostrophe before it does), so a
customer name cannot run in the seller's spreadsheet.

Up to EXPORT_INLINE_ROWS orders the file is written in the request. A larger export is written by a job
(jobs/exports.py) into an `OrderExport` row; the page shows its progress, then its Download link.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import IO, cast
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import format_decimal, get_locale, pgettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from redis.exceptions import RedisError
from werkzeug.datastructures import MultiDict

from blueprints.auth.forms import EmptyForm
from blueprints.orders import bp
from blueprints.orders.listing import Filters, conditions
from blueprints.orders.routes import account_integrations, order_words
from extensions import db, hx
from jobs.exports import queue_export
from jobs.tasks import job_state
from models import ExportState, Integration, Order, OrderExport
from models.base import utcnow
from models.export import EXPORT_KEPT

log = logging.getLogger(__name__)
CHUNK = 1000
FORMULA = ("=", "+", "-", "@", "\t", "\r")
MIMETYPES = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
FORMAT_NAMES = {"csv": "CSV", "xlsx": "Excel"}
EXCEL_TEXT_LENGTH = 32767  # the most an Excel cell holds
EXCEL_AMOUNT = "#,##0.00"
EXCEL_MOMENT = "yyyy-mm-dd hh:mm"
EXPORT_STATES = {
    ExportState.QUEUED: _l("Queued"),
    ExportState.RUNNING: _l("Running"),
    ExportState.DONE: _l("Done"),
    ExportState.FAILED: _l("Failed"),
}

# One cell of an export: a text, an amount, a moment as the panel's clock reads it, or nothing.
Cell = str | Decimal | datetime | None


@dataclass(frozen=True)
class Column:
    header: Callable[[], str]  # in the language in force
    value: Callable[[Order, Sheet], Cell]
    width: int  # in characters, in the Excel file


COLUMNS = (
    Column(lambda: _("Order number"), lambda order, sheet: order.order_number, 16),
    Column(lambda: _("Package"), lambda order, sheet: order.package_id, 14),
    Column(lambda: _("Integration"), lambda order, sheet: sheet.names[order.integration_id], 20),
    Column(lambda: _("Marketplace"), lambda order, sheet: sheet.marketplaces[order.integration_id], 12),
    Column(lambda: _("Date"), lambda order, sheet: sheet.moment(order.ordered_at), 17),
    Column(lambda: _("Customer"), lambda order, sheet: order.customer_name, 24),
    Column(lambda: _("Email"), lambda order, sheet: order.customer_email, 24),
    Column(lambda: _("Total"), lambda order, sheet: order.total, 12),
    Column(lambda: _("Currency"), lambda order, sheet: order.currency, 9),
    Column(
        lambda: _("Status"),
        lambda order, sheet: order.canonical_status.label if order.canonical_status else _("Unreadable"),
        14,
    ),
    Column(lambda: _("Marketplace status"), lambda order, sheet: order.marketplace_status, 16),
    Column(lambda: _("Shop order"), lambda order, sheet: order.shop_id, 12),
    Column(
        lambda: _("Shop status"),
        lambda order, sheet: (
            sheet.shops[order.integration_id].shop_status_name(order.shop_status)
            if order.shop_status
            else None
        ),
        14,
    ),
    Column(
        lambda: pgettext("the transfer state of an order", "Transfer"),
        lambda order, sheet: sheet.transfer_labels[order.transfer_state],
        14,
    ),
    Column(
        lambda: _("Reason"),
        lambda order, sheet: order.error_reason
        or order.ignored_reason
        or (_(order.review_reason) if order.review_reason else None),
        40,
    ),
    Column(lambda: _("Carrier"), lambda order, sheet: order.carrier, 14),
    Column(lambda: _("Tracking code"), lambda order, sheet: order.tracking_number, 18),
)


class Sheet:
    """The view's orders as rows of cells, newest first, read by id a chunk at a time; each chunk leaves
    the session before the next one is read. Built in the language the file is written in."""

    names: dict[int, str]
    marketplaces: dict[int, str]
    shops: dict[int, Integration]
    transfer_labels: dict[str, str]

    def __init__(
        self,
        account_id: int,
        filters: Filters,
        integrations: Iterable[Integration],
        progress: Callable[[int], object] | None = None,
    ) -> None:
        self.where = conditions(account_id, filters)
        self.zone = ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])
        # Plain values: a job commits its progress between chunks, which would expire rows.
        self.names = {integration.id: integration.name for integration in integrations}
        self.marketplaces = {
            integration.id: str(integration.marketplace.label) for integration in integrations
        }
        self.shops = {integration.id: integration for integration in integrations}
        self.transfer_labels = {
            state: str(label)
            for state, label in cast(dict[str, str], order_words()["transfer_labels"]).items()
        }
        self.progress = progress

    def count(self, at_most: int | None = None) -> int:
        """How many orders the view holds; counting stops at `at_most`, if given."""
        query = sa.select(Order.id).where(*self.where)
        if at_most is not None:
            query = query.limit(at_most)
        return db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0

    def hold(self) -> int:
        """Leave out the orders that arrive from now on, and count the rest: a job's progress then ends
        at the number it started with."""
        newest = db.session.scalar(sa.select(sa.func.max(Order.id)).where(*self.where))
        if newest is not None:
            self.where.append(Order.id <= newest)
        return self.count()

    def headers(self) -> list[str]:
        return [column.header() for column in COLUMNS]

    def rows(self) -> Iterator[list[list[Cell]]]:
        """The rows, a chunk at a time; `progress` hears how many went out after each chunk."""
        before: int | None = None
        done = 0
        while True:
            query = sa.select(Order).where(*self.where).order_by(Order.id.desc()).limit(CHUNK)
            if before is not None:
                query = query.where(Order.id < before)
            orders = db.session.scalars(query).all()
            if not orders:
                return
            rows = [[column.value(order, self) for column in COLUMNS] for order in orders]
            before = orders[-1].id
            for order in orders:
                db.session.expunge(order)  # nothing kept from chunk to chunk
            yield rows
            done += len(rows)
            if self.progress is not None:
                self.progress(done)

    def moment(self, value: datetime | None) -> datetime | None:
        """A moment as the panel's clock reads it (a spreadsheet knows no time zones)."""
        return value.astimezone(self.zone).replace(tzinfo=None) if value is not None else None


def csv_lines(sheet: Sheet) -> Iterator[str]:
    """The sheet as CSV text: the byte order mark and the header, then a chunk of orders at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";" if str(get_locale()) == "tr" else ",", lineterminator="\r\n")
    writer.writerow(_csv_field(header) for header in sheet.headers())
    yield "\ufeff" + buffer.getvalue()
    for rows in sheet.rows():
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([_csv_field(cell) for cell in row] for row in rows)
        yield buffer.getvalue()


def _csv_field(cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, Decimal):
        return str(format_decimal(cell, format="0.00"))
    if isinstance(cell, datetime):
        return cell.strftime("%Y-%m-%d %H:%M")
    return "'" + cell if cell.startswith(FORMULA) else cell


def write_excel(sheet: Sheet, file: IO[bytes]) -> None:
    """The sheet as an Excel workbook, its rows written as they come (openpyxl's write-only mode keeps
    none in memory)."""
    book = Workbook(write_only=True)
    worksheet = book.create_sheet(_("Orders"))
    for index, column in enumerate(COLUMNS, start=1):
        worksheet.column_dimensions[get_column_letter(index)].width = column.width
    worksheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for title in sheet.headers():
        cell = WriteOnlyCell(worksheet, title)
        cell.font = bold
        header.append(cell)
    worksheet.append(header)

    def excel_cell(value: Cell) -> object:
        if value is None:
            return None
        if isinstance(value, str):
            text = ILLEGAL_CHARACTERS_RE.sub("", value)[:EXCEL_TEXT_LENGTH]
            if not text.startswith(FORMULA) and text not in ERROR_CODES:
                return text
            cell = WriteOnlyCell(worksheet, text)
            cell.data_type = "s"  # openpyxl takes "=…" for a formula and "#N/A" for an error
            cell.quotePrefix = True
            return cell
        cell = WriteOnlyCell(worksheet, value)
        cell.number_format = EXCEL_MOMENT if isinstance(value, datetime) else EXCEL_AMOUNT
        return cell

    for rows in sheet.rows():
        for row in rows:
            worksheet.append([excel_cell(value) for value in row])
    book.save(file)


def write(sheet: Sheet, kind: str, file: IO[bytes]) -> None:
    """The sheet as a file of the kind (csv or xlsx)."""
    if kind == "xlsx":
        write_excel(sheet, file)
        return
    for text in csv_lines(sheet):
        file.write(text.encode("utf-8"))


def file_name(kind: str, moment: datetime) -> str:
    zone = ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])
    return f"orders-{moment.astimezone(zone):%Y-%m-%d-%H%M}.{kind}"


# -- At once, in the request ---------------------------------------------------------------------------


@bp.get("/export.csv")
def export_csv() -> ResponseReturnValue:
    """The view's orders as a CSV file, streamed a chunk at a time."""
    sheet, filters = _view_sheet(request.args)
    if (refused := _refuse_large(sheet, filters)) is not None:
        return refused
    return Response(
        stream_with_context(csv_lines(sheet)),
        mimetype=MIMETYPES["csv"],
        headers={
            "Content-Disposition": f'attachment; filename="{file_name("csv", utcnow())}"',
            "Cache-Control": "no-store",
        },
    )


@bp.get("/export.xlsx")
def export_xlsx() -> ResponseReturnValue:
    """The view's orders as an Excel file, built in memory, then sent."""
    sheet, filters = _view_sheet(request.args)
    if (refused := _refuse_large(sheet, filters)) is not None:
        return refused
    file = io.BytesIO()  # a few hundred kilobytes at most: larger exports are a job's
    write_excel(sheet, file)
    file.seek(0)
    return _attachment(file, "xlsx", utcnow())


def _view_sheet(args: MultiDict[str, str]) -> tuple[Sheet, Filters]:
    """The signed-in seller's view, as the page's URL or its Export form gives it."""
    integrations = account_integrations()
    filters = Filters.parse(args, {integration.id for integration in integrations})
    return Sheet(current_user.id, filters, integrations), filters


def _refuse_large(sheet: Sheet, filters: Filters) -> ResponseReturnValue | None:
    """A view too large to write in a request goes back to the page, whose Export buttons start a job
    (a bookmarked link, or orders that came in since the button was pressed)."""
    limit = current_app.config["EXPORT_INLINE_ROWS"]
    if sheet.count(at_most=limit + 1) <= limit:
        return None
    flash(
        _("More than %(count)d orders: press Export again to have the file prepared.", count=limit),
        "warning",
    )
    return redirect(url_for("orders.list_orders", **filters.page(size=None)), 303)


def _attachment(file: IO[bytes], kind: str, moment: datetime) -> Response:
    response = send_file(
        file, mimetype=MIMETYPES[kind], as_attachment=True, download_name=file_name(kind, moment)
    )
    response.headers["Cache-Control"] = "no-store"  # the seller's customers: no cache keeps them
    return response


# -- Larger: written by a job --------------------------------------------------------------------------


@bp.post("/exports")
def start_export() -> ResponseReturnValue:
    """Export to CSV or Excel: a small view's file comes at once, a larger one is written by a job whose
    progress the page shows, then its Download link."""
    if not EmptyForm().validate_on_submit():
        abort(400)
    kind = request.form.get("format", "")
    if kind not in MIMETYPES:
        abort(400)
    sheet, filters = _view_sheet(request.form)
    total = sheet.count()
    if total <= current_app.config["EXPORT_INLINE_ROWS"]:
        url = url_for(f"orders.export_{kind}", **filters.page(size=None))
        # htmx follows HX-Redirect by opening the address: an attachment downloads, the page stays.
        return ("", 200, {"HX-Redirect": url}) if hx() else redirect(url, 303)
    busy = db.session.scalar(
        sa.select(OrderExport)
        .where(
            OrderExport.account_id == current_user.id,
            OrderExport.state.in_([ExportState.QUEUED, ExportState.RUNNING]),
        )
        .order_by(OrderExport.id.desc())
        .limit(1)
    )
    if busy is not None and not _stalled(busy):
        # One at a time: the jobs share the pipeline's workers with every seller's pulls.
        note = _("Your export below is still being written; export again when it is done.")
        return _answer_with(busy, ("warning", note))
    db.session.execute(sa.delete(OrderExport).where(OrderExport.created_at < utcnow() - EXPORT_KEPT))
    export = OrderExport(
        account_id=current_user.id,
        format=kind,
        filters=urlencode(filters.args(before=None, after=None, size=None, sort=None)),
        rows_total=total,
    )
    db.session.add(export)
    db.session.commit()
    try:
        queue_export(export.id)
    except RedisError as error:
        log.warning("could not queue export %s: %s", export.id, error)
        db.session.delete(export)
        db.session.commit()
        note = _(
            "The export could not be started: the hub's job queue cannot be reached. Try again in a minute."
        )
        if hx():
            return render_template("orders/_export.html", export=None, note=("error", note))
        flash(note, "error")
        return redirect(url_for("orders.list_orders", **filters.page(size=None)), 303)
    return _answer_with(export)


def _answer_with(export: OrderExport, note: tuple[str, str] | None = None) -> ResponseReturnValue:
    """The export's progress: in the Orders page's panel (htmx), or on a page of its own."""
    if hx():
        return render_template("orders/_export.html", note=note, **_export_context(export))
    if note is not None:
        flash(note[1], note[0])
    return redirect(url_for("orders.show_export", export_id=export.id), 303)


@bp.get("/exports/<id:export_id>")
def show_export(export_id: int) -> ResponseReturnValue:
    """One export: its progress while the job writes it (the panel polls this), then its Download link."""
    export = _get_export(export_id)
    if hx():
        return render_template("orders/_export.html", note=None, **_export_context(export))
    back = url_for("orders.list_orders") + (f"?{export.filters}" if export.filters else "")
    return render_template("orders/export.html", back=back, note=None, **_export_context(export))


@bp.get("/exports/<id:export_id>/file")
def download_export(export_id: int) -> ResponseReturnValue:
    """The export's file, once written."""
    export = _get_export(export_id)
    if export.state != ExportState.DONE or export.content is None:
        abort(404)
    return _attachment(io.BytesIO(export.content), export.format, export.created_at)


def _stalled(export: OrderExport) -> bool:
    """Queued or running, but its job is gone (Redis came back empty, the job failed outside its own
    handling), or it is long past the time its job may take (the way to tell with Redis away)."""
    if export.stalled(current_app.config["EXPORT_JOB_TIMEOUT"]):
        return True
    if not export.live:
        return False
    try:
        status = job_state(f"export-{export.id}").status
    except RedisError:
        return False  # cannot tell now: its time limit will
    return status in ("", "finished", "failed", "stopped", "canceled")


def _get_export(export_id: int) -> OrderExport:
    export = db.session.scalar(
        sa.select(OrderExport).where(OrderExport.id == export_id, OrderExport.account_id == current_user.id)
    )
    if export is None:
        abort(404)
    return export


def _export_context(export: OrderExport) -> dict[str, object]:
    return {
        "export": export,
        "stalled": _stalled(export),
        "file_name": file_name(export.format, export.created_at),
        "format_names": FORMAT_NAMES,
        "export_states": EXPORT_STATES,
    }
