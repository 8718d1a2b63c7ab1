"""The catalog: every family is complete, and the worker serves every workflow it lists."""

from __future__ import annotations

import typing

import pytest
from temporalio import workflow
from temporalio.client import Client

from sagaworks import Family, ProgressStatus, registry
from sagaworks.activities.db import Database
from sagaworks.worker import running_worker


@pytest.mark.parametrize("fam", registry().families, ids=lambda f: f.name)
def test_every_sample_validates_against_its_input_model(fam: Family) -> None:
    paths = fam.sample_paths()
    assert paths, f"{fam.name} has no sample input"
    for path in paths:
        fam.parse(path.read_bytes())  # raises naming the field if a sample drifted from the model


@pytest.mark.parametrize("fam", registry().families, ids=lambda f: f.name)
def test_every_family_answers_one_status_shape_and_accepts_its_controls(fam: Family) -> None:
    definition = workflow._Definition.must_from_class(fam.workflow)
    status = definition.queries["status"]
    answer = typing.get_type_hints(status.fn)["return"]
    assert issubclass(answer, ProgressStatus)
    for name in fam.signals:
        assert name in definition.signals, f"{fam.name}: {name} is not a signal of {fam.workflow_type}"
    for name in fam.updates:
        assert name in definition.updates, f"{fam.name}: {name} is not an update of {fam.workflow_type}"
    assert definition.name == fam.workflow_type
    assert registry().family_of_type(fam.workflow_type) is fam


def test_names_are_unique_and_unknown_names_are_refused() -> None:
    names = [f.name for f in registry().families]
    assert len(names) == len(set(names))
    with pytest.raises(KeyError, match="the catalog has: .*order"):
        registry().family("no-such-family")


async def test_the_worker_serves_every_workflow_of_the_catalog(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=2) as worker:
        served = set(worker._workflow_worker._workflows)  # type: ignore[union-attr]  # private: the worker's registered workflow types
    assert served == {workflow._Definition.must_from_class(w).name for w in registry().workflows()}
