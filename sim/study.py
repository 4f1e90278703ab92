"""Writing experiment results to a folder: JSON, figures and the study report.

Files are never replaced silently: an existing file of the same name stops
the command unless ``overwrite`` is given.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import matplotlib.pyplot as plt

from scenarios import Scenario, load_scenario
from sim import figures
from sim.experiments import latency_sweep, scale_up, transfer_vs_token
from sim.output import OutputError

logger = logging.getLogger(__name__)

SWEEP_LIMITS_MS = [100, 75, 50, 30, 20, 15]
ALL_FILES = (
    "transfer-vs-token.json",
    "transfer-vs-token.png",
    "latency-sweep.json",
    "latency-sweep.png",
    "scale-up.json",
    "scale-up-cost.png",
    "scale-up-merit-order.png",
)
SCALES = [round(0.1 + 0.05 * i, 4) for i in range(25)]


class StudyWriter:
    """Collects the files of one output folder and refuses to clobber any."""

    def __init__(self, out_dir: str | Path, overwrite: bool = False):
        self.out = Path(out_dir)
        self.overwrite = overwrite
        if self.out.is_symlink():
            raise OutputError(self.out, "is a symbolic link; name the folder itself")
        if self.out.exists() and not self.out.is_dir():
            raise OutputError(self.out, "is a file, not a folder")

    def _target(self, name: str) -> Path:
        path = self.out / name
        if path.is_symlink():
            raise OutputError(path, "is a symbolic link; it is not followed")
        if path.exists() and not path.is_file():
            raise OutputError(path, "is not a file; it is not replaced")
        if path.exists() and not self.overwrite:
            raise OutputError(path, "exists; pass --overwrite to replace it")
        return path

    def check(self, *names: str) -> None:
        """Fail before any work if one of the files would be replaced."""
        for name in names:
            self._target(name)

    def json(self, name: str, report: dict) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        path = self._target(name)
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        return path

    def figure(self, name: str, ax) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        path = self._target(name)
        ax.figure.savefig(path, dpi=110)
        plt.close(ax.figure)
        return path

    def text(self, name: str, text: str) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        path = self._target(name)
        path.write_text(text, encoding="utf-8")
        return path


def save_transfer_vs_token(writer: StudyWriter, scenario: Scenario) -> dict:
    writer.check("transfer-vs-token.json", "transfer-vs-token.png")
    result = transfer_vs_token(scenario)
    report = result.to_dict()
    writer.json("transfer-vs-token.json", report)
    ax = figures.transfer_vs_token_prices(report, result.token, result.transfer)
    writer.figure("transfer-vs-token.png", ax)
    return report


def save_latency_sweep(
    writer: StudyWriter, scenario: Scenario, workload: str, limits: list[float]
) -> dict:
    writer.check("latency-sweep.json", "latency-sweep.png")
    report = latency_sweep(scenario, workload, limits).to_dict()
    writer.json("latency-sweep.json", report)
    writer.figure("latency-sweep.png", figures.latency_sweep_prices(report))
    return report


def save_scale_up(
    writer: StudyWriter, scenario: Scenario, scales, progress: bool = True
) -> dict:
    names = ("scale-up.json", "scale-up-cost.png", "scale-up-merit-order.png")
    writer.check(*names)
    report = scale_up(scenario, scales, progress=progress).to_dict()
    writer.json(names[0], report)
    writer.figure(names[1], figures.scale_up_costs(report))
    base = min(report["points"], key=lambda p: abs(p["scale"] - 1.0))
    threshold = report["infeasible_above_scale"]
    marks = [1.0] + ([threshold] if threshold else [])
    ax = figures.merit_order(scenario, marks, base["marginal_assets"])
    writer.figure(names[2], ax)
    return report


def run_all(out_dir: str | Path, overwrite: bool = False) -> Path:
    """The full reproduction: three experiments and report.md."""
    from sim.report import study_report

    writer = StudyWriter(out_dir, overwrite)
    writer.check("report.md", *ALL_FILES)
    us5 = load_scenario("us5")
    big = load_scenario("us20") if "us20" in _bundled() else us5
    tvt = save_transfer_vs_token(writer, us5)
    sweep = save_latency_sweep(writer, us5, "chat", SWEEP_LIMITS_MS)
    scale = save_scale_up(writer, big, SCALES)
    return writer.text("report.md", study_report(tvt, sweep, scale))


def _bundled() -> list[str]:
    from scenarios import bundled_scenarios

    return bundled_scenarios()
