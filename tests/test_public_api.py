"""The public API of sagaworks: every exported name resolves, loaded on first use, so
importing sagaworks alone stays light."""

from __future__ import annotations

import subprocess
import sys

import sagaworks
from sagaworks import Family


def test_every_public_name_resolves() -> None:
    for name, module in sagaworks._EXPORTS.items():
        value = getattr(sagaworks, name)
        assert value is getattr(sys.modules[module], name), name


def test_importing_sagaworks_loads_neither_the_sdk_nor_sqlalchemy() -> None:
    probe = (
        "import sys, sagaworks; print(sorted(m for m in ('temporalio', 'sqlalchemy', 'pydantic') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def test_a_family_that_declares_an_approval_accepts_its_updates() -> None:
    from pydantic import BaseModel
    from temporalio.common import WorkflowIDReusePolicy

    class Draft(BaseModel):
        title: str

    class Pipeline:
        pass

    fam = Family(
        name="publish",
        workflow=Pipeline,
        input_model=Draft,
        description="draft, review, approve, publish",
        workflow_id=lambda d: f"publish-{d.title}",
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        conflict_message=lambda d: "running",
        updates=("comment",),
        approval=sagaworks.ApprovalDeclaration(subject="this post", escalation="the managing editor is asked"),
    )
    assert fam.updates == ("comment", "approve", "reject")
    assert set(fam.accepts) >= {"pause", "resume", "approve", "reject"}
