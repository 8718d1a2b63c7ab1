"""The query family's agents: NLP (question -> plan), data (plan -> rows), viz (rows -> chart).

Each agent is a plain function over pydantic contracts (:mod:`activities.query.agents`),
served in-process by the worker's activities or remotely as a FastAPI app
(:mod:`activities.query.remote`).
"""
