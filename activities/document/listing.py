"""A batch's folder listing: the documents under a folder, and the listing stored (claim
check) and read a page at a time."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import delete, select
from temporalio import activity

from sagaworks import Database, database_errors, keep_alive, validation_error
from sagaworks.activities.document.roots import DocumentSettings
from sagaworks.activities.document.tables import ListingRow
from sagaworks.contracts.document import (
    LISTING_PAGE_BYTES,
    MAX_BATCH_DOCUMENTS,
    MAX_FOLDER_DEPTH,
    ListingPage,
    StoredListing,
)


class FolderListing:
    """The listing activities of :class:`~sagaworks.activities.document.activities.DocumentActivities`."""

    _db: Database
    _settings: DocumentSettings

    @activity.defn
    def list_documents(self, folder: str) -> list[str]:
        """The documents under a folder and its subfolders, sorted, as real absolute paths.

        Walks ``MAX_FOLDER_DEPTH`` levels down; skips hidden entries and symlinked folders;
        refuses a folder of more than ``MAX_BATCH_DOCUMENTS`` documents.
        """
        with keep_alive():
            return self._list(folder)

    @activity.defn
    def store_listing(self, folder: str) -> StoredListing:
        """List the folder as :meth:`list_documents` does and store the paths under the
        calling batch's workflow id (replacing what a retry or an earlier batch of that id
        stored); return the id and the count."""
        listing = activity.info().workflow_id or "(no workflow)"
        with keep_alive():
            paths = self._list(folder)
            with database_errors(), self._db.transaction() as session:
                session.execute(delete(ListingRow).where(ListingRow.listing == listing))
                session.add_all(ListingRow(listing=listing, position=n, path=path) for n, path in enumerate(paths))
        return StoredListing(listing=listing, total=len(paths))

    @activity.defn
    def listing_page(self, page: ListingPage) -> list[str]:
        """Up to ``page.limit`` paths of a stored listing from ``page.offset`` on, at most
        ``LISTING_PAGE_BYTES`` of them (always one, when one is left)."""
        found: list[str] = []
        size = 0
        with keep_alive(), database_errors(), self._db.transaction() as session:
            rows = session.scalars(
                select(ListingRow.path)
                .where(ListingRow.listing == page.listing, ListingRow.position >= page.offset)
                .order_by(ListingRow.position)
                .limit(page.limit)
            )
            for path in rows:
                size += len(path.encode()) + 4
                if found and size > LISTING_PAGE_BYTES:
                    break
                found.append(path)
        return found

    def _list(self, folder: str) -> list[str]:
        resolved = self._settings.resolve(folder)
        if not resolved.is_dir():
            raise validation_error("not a folder", field=folder)
        found: list[str] = []
        for current, dirs, files in os.walk(resolved):
            depth = len(Path(current).relative_to(resolved).parts)
            dirs[:] = [] if depth >= MAX_FOLDER_DEPTH else sorted(d for d in dirs if not d.startswith("."))
            found.extend(str(Path(current) / name) for name in files if not name.startswith("."))
            if len(found) > MAX_BATCH_DOCUMENTS:
                raise validation_error(
                    f"more than {MAX_BATCH_DOCUMENTS} documents: split the folder into several batches", field=folder
                )
        return sorted(found)
