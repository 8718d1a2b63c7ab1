"""The registration sagaworks finds through the project's entry point."""

from pathlib import Path

from sagaworks import Family
from shop.activities import SignupActivities
from shop.models import Signup
from shop.workflows import SignupSaga

SIGNUP = Family(
    "signup",
    workflow=SignupSaga,
    input_model=Signup,
    description="Sign a user up: account, card, welcome mail; undone in reverse on failure or cancel.",
    workflow_id=lambda signup: f"signup-{signup.signup_id}",
    id_reuse_policy="REJECT_DUPLICATE",
    activities=lambda worker: SignupActivities(worker.db).all(),
    # The console's sample buttons: the JSON files beside pyproject.toml (found there
    # with `pip install -e .`), each started with a fresh suffix on signup_id.
    samples=("signup.json", "signup-fails.json"),
    samples_dir=Path(__file__).resolve().parent.parent,
    rerun_field="signup_id",
)
