"""The Mesa agent of a twin: its own parameters, its state, and one rule call per day.

The agent stays small (STYLE rule 8): the decision rule lives in
``simulation.behaviour.agent_day``; ``step`` draws the day's four random numbers from the
model's seeded generator, in the fixed order, and applies the rule.
"""

from __future__ import annotations

from typing import Any

import mesa

from simulation.behaviour import (
    NO_OUTCOME,
    AgentInputs,
    AgentState,
    DayDraws,
    DayOutcome,
    agent_day,
)

__all__ = ["CustomerTwin"]


class CustomerTwin(mesa.Agent):
    """One synthetic customer. ``index`` is its row in the twin table."""

    def __init__(self, model: mesa.Model, index: int, inputs: AgentInputs,
                 state: AgentState) -> None:
        super().__init__(model)
        self.index = int(index)
        self.inputs = inputs
        self.state = state
        self.totals: dict[str, float] = dict.fromkeys(DayOutcome._fields, 0.0)

    def step(self) -> None:
        m: Any = self.model
        u = m.rng.random(3).tolist()
        draws = DayDraws(u[0], u[1], float(m.rng.standard_normal()), u[2])
        self.state, out = agent_day(self.inputs, self.state, m.terms, m.day, draws)
        if out is not NO_OUTCOME:
            for k, v in zip(DayOutcome._fields, out, strict=True):
                self.totals[k] += float(v)
        m.record(out, self.state.active)
