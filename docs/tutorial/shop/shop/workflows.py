"""The saga: orchestration only, every effect an activity."""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sagaworks import StepWorkflow
    from shop.activities import SignupActivities as acts
    from shop.models import Signup, Step, Welcome

STEPS = ("create_account", "charge_card", "send_welcome")


@workflow.defn
class SignupSaga(StepWorkflow):
    """Account, card, welcome mail; a failure or a cancel undoes them in reverse."""

    @workflow.run
    async def run(self, signup: Signup) -> Welcome:
        refs = {}
        async with self.steps.plan(STEPS) as steps:

            def step(name: str) -> Step:
                return Step(key=steps.key(name), run_id=steps.origin_run_id, signup=signup)

            refs["account"] = await steps.run(
                "create_account", acts.create_account, step("create_account"), undo=acts.close_account
            )
            refs["payment"] = await steps.run(
                "charge_card", acts.charge_card, step("charge_card"), undo=acts.refund_card
            )
            refs["welcome"] = await steps.run("send_welcome", acts.send_welcome, step("send_welcome"))
        return Welcome(signup_id=signup.signup_id, references=refs)
