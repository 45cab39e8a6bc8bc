"""The committed ground-truth matrix: aggregated transfer results that rankings are scored against.

File format (JSON, diff-friendly): the protocol and its hash, library versions, the regenerate command,
and one record per (source, target) with mean, std and number of seeds of the target metric; baseline
records have ``source == ""``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from taskscout.errors import DataError
from taskscout.io import write_json

# Shipped inside the package so `taskscout bench` works from any installation, not only a checkout.
GROUND_TRUTH_DIR = Path(__file__).resolve().parent.parent / "benchmark_data"


@dataclass
class GroundTruth:
    """Transfer results per target: ``truth[target][source]`` = mean metric; ``baseline[target]``."""

    protocol: dict[str, Any]
    records: pd.DataFrame  # columns source, target, mean, std, n
    meta: dict[str, Any]

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
        return cls(protocol=data["protocol"], records=records, meta=meta)


def default_ground_truth_path(protocol: str = "small-v1") -> Path:
    return GROUND_TRUTH_DIR / f"{protocol}.json"
