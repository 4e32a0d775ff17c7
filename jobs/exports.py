"""The Orders page's exports too large for a request: a job writes the file and keeps it in the export's
row, in the database, because the web and the workers may run on different machines."""

from __future__ import annotations

import logging
import tempfile
from urllib.parse import parse_qsl

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from rq.timeouts import JobTimeoutException
from werkzeug.datastructures import MultiDict

from extensions import db
from jobs import PIPELINE, job, queue
from models import Account, ExportState, Integration, OrderExport
from models.base import utcnow

log = logging.getLogger(__name__)


def queue_export(export_id: int) -> None:
    """Hand the export to the workers. Raises RedisError: the caller takes the export back."""
    queue(PIPELINE).enqueue(
        export_orders,
        export_id,
        job_id=f"export-{export_id}",
        job_timeout=current_app.config["EXPORT_JOB_TIMEOUT"],
        result_ttl=current_app.config["JOB_RESULT_TTL"],
    )


@job
def export_orders(export_id: int) -> bool:
    """Write one export in the seller's language: the orders a chunk at a time into a temporary file,
    the progress committed after each chunk (the page polls it), then the file into the export's row.
    A failure ends the job with the export marked failed and a sentence for the seller; the log keeps
    the traceback."""
    export = db.session.get(OrderExport, export_id)
    if export is None or not export.live:
        return False  # deleted after a day, or written already
    language = db.session.get_one(Account, export.account_id).language
    with force_locale(language):
        try:
            refused = _write(export)
        except Exception as error:
            log.exception("export %s failed", export_id)
            db.session.rollback()
            if isinstance(error, JobTimeoutException):
                minutes = max(1, current_app.config["EXPORT_JOB_TIMEOUT"] // 60)
                refused = _(
                    "The export took longer than %(minutes)d minutes and was stopped. Choose fewer "
                    "orders (a shorter date range) and export again.",
                    minutes=minutes,
                )
            else:
                refused = _("The export could not be written. Export again in a few minutes.")
        if refused is None:
            return True
        failed = db.session.get(OrderExport, export_id)
        if failed is not None:
            failed.state, failed.error, failed.finished_at = ExportState.FAILED, refused, utcnow()
            db.session.commit()
        return False


def _write(export: OrderExport) -> str | None:
    """Write the export and store its file; or why it cannot be written."""
    # Imported here: the Orders blueprint imports this module to queue the job.
    from blueprints.orders.export import Sheet, write
    from blueprints.orders.listing import Filters

    integrations = db.session.scalars(
        sa.select(Integration).where(Integration.account_id == export.account_id)
    ).all()
    filters = Filters.parse(MultiDict(parse_qsl(export.filters)), {row.id for row in integrations})
    if filters.problems:  # an integration it was filtered by is gone: every order would be exported
        return _("An integration this export was filtered by was deleted. Export again from the Orders page.")

    def progress(done: int) -> None:
        export.rows_done = done
        db.session.commit()

    sheet = Sheet(export.account_id, filters, integrations, progress)
    export.state, export.rows_done, export.rows_total = ExportState.RUNNING, 0, sheet.hold()
    db.session.commit()
    with tempfile.TemporaryFile() as file:
        write(sheet, export.format, file)
        file.seek(0)
        export.content = file.read()
    export.state, export.rows_total, export.finished_at = ExportState.DONE, export.rows_done, utcnow()
    db.session.commit()
    return None
