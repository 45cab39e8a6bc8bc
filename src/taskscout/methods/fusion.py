"""Rank fusion: combine several methods' rankings into one.

Reciprocal rank fusion (Cormack et al. 2009): ``score(s) = sum over methods m of 1 / (60 + rank_m(s))``,
with ranks from 1. It needs no score calibration across methods (LogME values and cosine similarities
live on different scales) and the constant 60 damps the influence of any single method's top ranks.
Name a fusion as ``fusion:METHOD+METHOD[+...]``, e.g. ``fusion:esm-logme+textemb``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata

from taskscout.errors import TaskscoutError
from taskscout.methods.base import MethodScores, SelectionMethod, Target
from taskscout.pool.store import PoolEntry

RRF_K = 60


def reciprocal_rank_fusion(rankings: list[dict[str, float]], k: int = RRF_K) -> dict[str, float]:
    """Fuse score dicts (higher = better) by reciprocal rank; ties in a ranking broken by name."""
    fused: dict[str, float] = {}
    for scores in rankings:
        ordered = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        for position, (source, _) in enumerate(ordered, start=1):
            fused[source] = fused.get(source, 0.0) + 1.0 / (k + position)
    return fused


def reciprocal_rank_fusion_matrix(similarities: np.ndarray, k: int = RRF_K) -> np.ndarray:
    """Fuse per-component similarities ``(sources, components)`` into one score per source.

    ``score_s = sum_c 1 / (k + rank_c(s))``, where ``rank_c`` ranks sources by decreasing similarity in
    component ``c`` (1 = most similar; ties share their average rank).
    """
    sims = np.asarray(similarities, dtype=np.float64)
    if sims.ndim != 2:
        raise ValueError("similarities must be a (sources, components) matrix")
    if sims.shape[0] == 0:
        return np.zeros(0)
    ranks = rankdata(-sims, axis=0, method="average")
    return np.sum(1.0 / (k + ranks), axis=1)


class RankFusion(SelectionMethod):
    """Reciprocal rank fusion of other methods: each member ranks the sources, and a source's score is
    the sum of ``1 / (k + rank)`` over the members (``fusion:A+B`` by name, or configured members)."""

    name = "fusion"
    kind = None  # reads the entries of each member's kind
    description = "reciprocal rank fusion of other methods (fusion:A+B)"
    p1_cost = "the members' P1 steps"
    p2_cost = "the sum of the members' P2 costs"

    def __init__(self, members: Sequence[SelectionMethod]) -> None:
        """Fuse ``members`` (method instances, e.g. from :func:`taskscout.get_method` or configured ones).

        Raises:
            TaskscoutError: fewer than two members, or a member that is not a SelectionMethod.
        """
        if len(members) < 2:
            raise TaskscoutError("a fusion needs at least two methods, e.g. fusion:esm-logme+textemb")
        for member in members:
            if not isinstance(member, SelectionMethod):
                raise TaskscoutError(
                    f"a fusion member must be a SelectionMethod, got {type(member).__name__}"
                )
        self.members = list(members)
        self.name = "fusion:" + "+".join(m.name for m in self.members)
        names = [m.name for m in self.members]
        self.p2_reuses = tuple(dict.fromkeys(r for m in self.members for r in m.p2_reuses if r not in names))

    def score(self, target: Target, entries: list[PoolEntry], *, progress: bool = False) -> MethodScores:
        """Each member's loop over its own kind of entries, then the fusion of their rankings."""
        out = MethodScores()
        rankings = []
        for member in self.members:
            own = [e for e in entries if member.kind is None or e.kind == member.kind]
            result = member.score(target, own, progress=progress)
            rankings.append(result.scores)
            for source, why in result.failed.items():
                out.failed.setdefault(source, f"{member.name}: {why}")
        out.scores = reciprocal_rank_fusion(rankings)
        for source in out.scores:
            out.failed.pop(source, None)  # scored by at least one member
        return out
