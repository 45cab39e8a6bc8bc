"""The committed ground-truth matrix: aggregated transfer results that rankings are scored against.

File format (JSON, diff-friendly): the protocol and its hash, library versions, the regenerate command,
and one record per (source, target) with mean, std and number of seeds of the target metric; baseline
records have ``source == ""``. Beside it, ``NAME.runs.csv`` holds one row per run (``source, target,
seed, main``, ...); :meth:`GroundTruth.load` reads it when present, because the signal measures
(reliability, noise ceiling, paired tests against the baseline) need the individual seeds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from taskscout.errors import DataError
from taskscout.evaluate.suites import REFERENCE_PROTOCOL
from taskscout.io import write_json

# Shipped inside the package so `taskscout bench` works from any installation, not only a checkout.
GROUND_TRUTH_DIR = Path(__file__).resolve().parent.parent / "benchmark_data"


@dataclass
class GroundTruth:
    """Transfer results per target: ``truth[target][source]`` = mean metric; ``baseline[target]``."""

    protocol: dict[str, Any]
    records: pd.DataFrame  # columns source, target, mean, std, n
    meta: dict[str, Any]
    # One row per run (columns source, target, seed, main), restricted to the pairs in ``records``;
    # None when the runs file is not available (per-seed measures are then not computed).
    runs: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def targets(self) -> list[str]:
        return sorted(set(self.records["target"]))

    @property
    def sources(self) -> list[str]:
        return sorted(set(self.records["source"]) - {""})

    def truth(self, target: str) -> dict[str, float]:
        rows = self.records[(self.records["target"] == target) & (self.records["source"] != "")]
        return dict(zip(rows["source"], rows["mean"].astype(float), strict=True))

    def baseline(self, target: str) -> float:
        rows = self.records[(self.records["target"] == target) & (self.records["source"] == "")]
        return float(rows["mean"].iloc[0]) if len(rows) else float("nan")

    def complete_targets(self, min_sources: int = 1) -> list[str]:
        """Targets with a baseline and at least ``min_sources`` sources measured."""
        return [
            t
            for t in self.targets
            if len(self.truth(t)) >= min_sources and self.baseline(t) == self.baseline(t)
        ]

    def save(self, path: str | Path) -> None:
        records = self.records.sort_values(["target", "source"]).to_dict(orient="records")
        write_json(path, {**self.meta, "protocol": self.protocol, "records": records})

    @classmethod
    def load(cls, path: str | Path) -> GroundTruth:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            records = pd.DataFrame(data["records"], columns=["source", "target", "mean", "std", "n"])
        except FileNotFoundError:
            raise DataError(
                f"ground-truth file {path} does not exist; run `taskscout transfer` first"
            ) from None
        except (ValueError, KeyError) as exc:
            raise DataError(f"ground-truth file {path} is not valid ({type(exc).__name__}: {exc})") from None
        meta = {k: v for k, v in data.items() if k not in ("protocol", "records")}
        runs_path = path.with_suffix(".runs.csv")
        runs = read_runs(runs_path, records) if runs_path.exists() else None
        return cls(protocol=data["protocol"], records=records, meta=meta, runs=runs)


RUN_COLUMNS = ("source", "target", "seed", "main")


def read_runs(path: str | Path, records: pd.DataFrame | None = None) -> pd.DataFrame:
    """The runs CSV written by ``taskscout transfer --export``: columns ``source, target, seed, main``.

    The no-transfer baseline has an empty ``source``. With ``records`` only the (source, target) pairs
    of the aggregated ground truth are kept, so both always describe the same experiment.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path, keep_default_na=False, dtype={"source": str, "target": str})
    except (OSError, ValueError) as exc:
        raise DataError(
            f"cannot read runs file {path} ({exc}); regenerate it with `taskscout transfer`"
        ) from None
    missing = [c for c in RUN_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"runs file {path} lacks columns {', '.join(missing)}; regenerate it")
    frame = frame[list(RUN_COLUMNS)].copy()
    try:
        frame["seed"] = frame["seed"].astype(int)
        frame["main"] = pd.to_numeric(frame["main"], errors="raise").astype(float)
    except (ValueError, TypeError) as exc:
        raise DataError(f"runs file {path} has a non-numeric seed or main value ({exc})") from None
    if records is not None:
        pairs = pd.MultiIndex.from_frame(records[["source", "target"]].astype(str))
        frame = frame[pd.MultiIndex.from_frame(frame[["source", "target"]]).isin(pairs)]
    return frame.reset_index(drop=True)


def default_ground_truth_path(protocol: str = REFERENCE_PROTOCOL) -> Path:
    return GROUND_TRUTH_DIR / f"{protocol}.json"
