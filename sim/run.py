"""Running a simulation from Python or the command line."""

from __future__ import annotations

import logging

from tqdm import tqdm

from scenarios.schema import Scenario
from sim.model import TokenFlowModel

logger = logging.getLogger(__name__)


def simulate(
    scenario: Scenario,
    hours: int,
    *,
    seed: int | None = None,
    progress: bool = False,
    **model_options,
) -> TokenFlowModel:
    """Build the model and step it ``hours`` times (one-hour steps)."""
    model = TokenFlowModel(scenario, seed=seed, **model_options)
    logger.info("simulating %s for %d hours (seed %s)", scenario.name, hours, seed)
    for _ in tqdm(range(hours), desc=scenario.name, unit="h", disable=not progress):
        model.step()
    return model
