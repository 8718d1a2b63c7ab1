"""Stage outputs by content hash (claim check): the workflow carries keys, never outputs.

A key hashes everything an output depends on: the plan's content hash, the stage, its
options and the keys of the outputs it read. The same plan analysed again therefore finds
every finished stage's output under the same key and does not run it again.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, String, Text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from sagaworks import Base, Database, ErrorClass, database_errors, error
from sagaworks.contracts.plans import StageInput


class PlanOutputRow(Base):
    __tablename__ = "plan_stage_outputs"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    stage: Mapped[str] = mapped_column(String(16))
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    output: Mapped[str] = mapped_column(Text)
    """The output as JSON."""
    produced_by: Mapped[str] = mapped_column(String(300))
    """The workflow id of the run that executed the stage."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=lambda: datetime.now(UTC))


def output_key(request: StageInput) -> str:
    """The content address of what ``request`` would produce."""
    basis: dict[str, Any] = {
        "stage": request.stage,
        "plan": request.plan.content_hash,
        "municipality": request.plan.municipality,
        "options": request.options.model_dump(mode="json"),
        "upstream": dict(sorted(request.upstream.items())),
    }
    if request.stage == "report":  # the report names the plan and writes down the run's mitigations and alerts
        basis["plan_id"] = request.plan.plan_id
        basis["mitigations"] = [m.model_dump(mode="json") for m in request.mitigations]
        basis["alerts"] = [a.model_dump(mode="json") for a in request.alerts]
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()


class OutputStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        Base.metadata.create_all(db.engine, tables=[PlanOutputRow.__table__])  # type: ignore[list-item]

    def get(self, key: str) -> dict[str, Any] | None:
        with database_errors(), self._db.transaction() as session:
            row = session.get(PlanOutputRow, key)
            return json.loads(row.output) if row is not None else None

    def require(self, key: str, stage: str) -> dict[str, Any]:
        found = self.get(key)
        if found is None:
            raise error(
                ErrorClass.PROCESSING, f"the stored output {key} of stage {stage} is missing", non_retryable=True
            )
        return found

    def put(self, key: str, stage: str, content_hash: str, output: dict[str, Any], produced_by: str) -> None:
        """Store an output once; a second writer of the same key changes nothing."""
        with database_errors():
            try:
                with self._db.transaction() as session:
                    if session.get(PlanOutputRow, key) is None:
                        session.add(
                            PlanOutputRow(
                                key=key,
                                stage=stage,
                                content_hash=content_hash,
                                output=json.dumps(output, ensure_ascii=False),
                                produced_by=produced_by,
                            )
                        )
            except IntegrityError:
                pass  # a concurrent run stored the same content first
