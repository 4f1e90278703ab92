"""The agent-based simulation of the token-flow market."""

from sim.model import TokenFlowModel
from sim.output import (
    OutputError,
    OutputExistsError,
    check_out_dir,
    run_tables,
    save_run,
    summarise,
)
from sim.run import simulate

__all__ = [
    "OutputError",
    "OutputExistsError",
    "check_out_dir",
    "TokenFlowModel",
    "run_tables",
    "save_run",
    "simulate",
    "summarise",
]
