"""Solving the clearing LP and reading the solution out.

GLOP solves from the previous basis (dual simplex, presolve off). At a
degenerate optimum the duals are not unique; prices are then those of the
next token, and the last token's are compared to say whether they differ.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from ortools.linear_solver import pywraplp

from markets import units

logger = logging.getLogger(__name__)

# Where the optimum is degenerate, prices are those of the next token: the
# duals of the market with every hard demand raised by this much (10 tokens/s),
# which are also optimal duals of the market itself. Lowering demand by as
# much gives the last token's prices; where the two differ, prices are not
# unique and the result says so (`degenerate`).
NEXT_TOKEN_MTOK_S = 1e-5
# Presolve off and dual simplex so that a re-solve restarts from the last
# basis; tolerances tighter than GLOP's defaults (1e-8 and 1e-7) so that the
# tiny tie-break offsets above are honoured, not rounded away.
_GLOP_PARAMS = (
    "use_preprocessing: false use_dual_simplex: true "
    "dual_feasibility_tolerance: 1e-10 primal_feasibility_tolerance: 1e-10"
)
# Where the tight tolerances leave GLOP unable to decide (markets within a
# hair of infeasibility, or of extreme magnitudes), it is retried from scratch
# with its default tolerances, first by dual and then by primal simplex.
_GLOP_FALLBACK_PARAMS = (
    "use_preprocessing: false use_dual_simplex: true",
    "use_preprocessing: false use_dual_simplex: false",
)


class ClearingError(RuntimeError):
    """The solver failed for a reason other than infeasibility."""


@dataclass
class RawSolution:
    """Primal values and duals of one solve, in LP units (see markets.prices)."""

    status: str
    y: np.ndarray
    z: np.ndarray
    u: np.ndarray
    d: np.ndarray
    q: np.ndarray
    lp_objective: float
    degenerate: bool
    iterations: int
    dual_demand: np.ndarray = field(default_factory=lambda: np.zeros(0))
    dual_processing: np.ndarray = field(default_factory=lambda: np.zeros(0))
    dual_compute: np.ndarray = field(default_factory=lambda: np.zeros(0))
    dual_link: np.ndarray = field(default_factory=lambda: np.zeros(0))
    dual_objective: float = float("nan")


class SolvingMixin:
    """Solve and read-out of `markets.lp.ClearingModel` (its solver, rows and
    variables are built there)."""

    def solve(self, *, cold: bool = False, compare_last: bool = True) -> RawSolution:
        """Solve from the previous basis (or from scratch) and read it out.

        With ``compare_last`` False a degenerate optimum is priced at the next
        token without the extra solve that compares it with the last token's
        prices; ``degenerate`` then only says that the optimum was degenerate.
        """
        if cold:
            self._build_solver(self.demand, self.offers)
        code = self.solver.Solve(self.params)
        for glop_params in (_GLOP_PARAMS, *_GLOP_FALLBACK_PARAMS):
            if code in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.INFEASIBLE):
                break
            logger.info("GLOP status %s; solving again from scratch", code)
            self._build_solver(self.demand, self.offers, glop_params=glop_params)
            code = self.solver.Solve(self.params)
        if code == pywraplp.Solver.INFEASIBLE:
            return self._empty("infeasible")
        if code != pywraplp.Solver.OPTIMAL:
            self._build_solver(self.demand, self.offers)
            raise ClearingError(
                f"GLOP could not solve {self.scenario.name} (status {code})"
            )

        solution = self._read_primal()
        if not solution.degenerate:
            self._read_duals(solution)
            return solution

        # A degenerate optimum may have many dual solutions. Report the next
        # token's (demand raised a little), then compare with the last token's
        # (demand lowered a little): only if they differ are prices not unique.
        # At the edge of feasibility there is no next token; the last token's
        # prices are reported then.
        next_ok = self._solve_perturbed(+NEXT_TOKEN_MTOK_S)
        if next_ok:
            self._read_duals(solution)
            if not compare_last:
                self._perturb_demand(0.0)
                return solution
        self._solve_perturbed(-NEXT_TOKEN_MTOK_S)
        if not next_ok:
            self._read_duals(solution)
        last_token = _duals(self.demand_rows)
        self._perturb_demand(0.0)
        lowered = self._lowerable_pairs()
        solution.degenerate = not next_ok or not np.allclose(
            solution.dual_demand[lowered], last_token[lowered], rtol=1e-7, atol=1e-7
        )
        return solution

    def _solve_perturbed(self, delta_mtok_s: float) -> bool:
        """Solve with demand shifted by delta; False if that is infeasible."""
        self._perturb_demand(delta_mtok_s)
        code = self.solver.Solve(self.params)
        if code == pywraplp.Solver.OPTIMAL:
            return True
        if code == pywraplp.Solver.INFEASIBLE and delta_mtok_s > 0:
            return False
        self._perturb_demand(0.0)
        raise ClearingError(f"GLOP failed with status {code} pricing a token")

    def _lowerable_pairs(self) -> np.ndarray:
        """Pairs whose hard demand can be lowered by the perturbation."""
        hard = np.array(
            [units.tokens_to_mtok_s(self.demand[p].tokens_per_s) for p in self.pairs]
        )
        return hard > 4 * NEXT_TOKEN_MTOK_S

    def _perturb_demand(self, delta_mtok_s: float) -> None:
        """Shift every demand pair's hard demand by delta (0 restores it).

        Pair p is shifted by delta * (1 + p / n), so that no two pairs move
        alike and the perturbed market has one dual solution. A pair too small
        to be lowered, or with no route to any GPU on offer, keeps its demand.
        """
        n = max(1, len(self.pairs))
        for p, pair in enumerate(self.pairs):
            hard = units.tokens_to_mtok_s(self.demand[pair].tokens_per_s)
            reachable = self.pair_reaches_offer[p]
            if reachable and (hard > 4 * NEXT_TOKEN_MTOK_S or delta_mtok_s > 0):
                hard += delta_mtok_s * (1 + p / n)
            self.demand_rows[p].SetBounds(hard, hard)

    def _read_primal(self) -> RawSolution:
        link_rows = [self.link_rows[i] for i in self.used_links]
        y = _values(self.y_vars)
        return RawSolution(
            status="optimal",
            y=y,
            z=_values(self.z_vars),
            u=_values(self.u_vars),
            d=_values(self.d_vars),
            q=_values(self.q_vars),
            lp_objective=self.solver.Objective().Value(),
            degenerate=self._is_degenerate(y, link_rows),
            iterations=self.solver.iterations(),
        )

    def _read_duals(self, solution: RawSolution) -> None:
        link_rows = [self.link_rows[i] for i in self.used_links]
        solution.dual_demand = _duals(self.demand_rows)
        solution.dual_processing = _duals(self.processing_rows)
        solution.dual_compute = _duals(self.compute_rows)
        solution.dual_link = _duals(link_rows)
        solution.dual_objective = self._dual_objective(solution.dual_demand, link_rows)

    def _dual_objective(self, dual_demand: np.ndarray, link_rows) -> float:
        """b'dual plus upper-bound terms, at the unperturbed right-hand sides.

        Equals the primal objective whenever the duals are optimal.
        """
        hard = np.array(
            [units.tokens_to_mtok_s(self.demand[p].tokens_per_s) for p in self.pairs]
        )
        total = float(dual_demand @ hard) if len(hard) else 0.0
        total += sum(r.dual_value() * r.ub() for r in link_rows)
        for var in self.u_vars + self.d_vars:
            total += min(0.0, var.reduced_cost()) * var.ub()
        return total

    def _is_degenerate(self, y: np.ndarray, link_rows, tol: float = 1e-9) -> bool:
        """A basic variable at a bound, or a binding link row left basic.

        Only a degenerate optimum can have more than one dual solution.
        """
        basic = pywraplp.Solver.BASIC
        for var in self.y_vars + self.z_vars + self.u_vars + self.d_vars + self.q_vars:
            if var.basis_status() == basic:
                value = var.solution_value()
                if value <= tol or value >= var.ub() - tol:
                    return True
        flows = self.link_matrix @ y if len(y) else np.zeros(len(link_rows))
        for row, flow in zip(link_rows, flows, strict=True):
            if row.basis_status() == basic and flow >= row.ub() - tol * (1 + row.ub()):
                return True
        return False

    def _empty(self, status: str) -> RawSolution:
        none = np.zeros(0)
        return RawSolution(status, none, none, none, none, none, float("nan"), False, 0)


def _values(variables) -> np.ndarray:
    return np.fromiter((v.solution_value() for v in variables), float, len(variables))


def _duals(rows) -> np.ndarray:
    return np.fromiter((r.dual_value() for r in rows), float, len(rows))
