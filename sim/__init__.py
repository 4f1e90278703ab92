"""The agent-based simulation of the token-flow market."""

from sim.model import TokenFlowModel
from sim.output import OutputExistsError, run_tables, save_run, summarise
from sim.run import simulate

__all__ = [
    "OutputExistsError",
    "TokenFlowModel",
    "run_tables",
    "save_run",
    "simulate",
    "summarise",
]
