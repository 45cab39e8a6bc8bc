r"""Transferability scores computed with each source's fine-tuned model: the expensive references.

Every method here embeds the target with the source's fine-tuned encoder (pooled features ``f(x)``) and,
for LEEP and NCE, applies the source's head (``theta(x)``, logits of the source labels). Six scores:

* ``logme-full`` -- LogME (You et al., ICML 2021) of the fine-tuned features: the reference ESM-LogME
  approximates (Schulte et al.). Exact maximum evidence, via :func:`taskscout.methods.logme.logme`.
* ``leep`` -- LEEP (Nguyen et al., ICML 2020): with ``theta(x_i)`` the source head's softmax over source
  labels ``z``, the empirical conditional ``P(y|z) = sum_i theta(x_i)_z 1[y_i = y] / sum_i theta(x_i)_z``
  and ``LEEP = 1/N sum_i log sum_z P(y_i|z) theta(x_i)_z``.
* ``nce`` -- NCE (Tran et al., ICCV 2019): ``-H(Y|Z) = sum_{y,z} P(y,z) log P(y|z)`` with ``Z`` the source
  head's hard predictions and ``P`` the empirical joint distribution over the target rows.
* ``hscore`` -- H-score (Bao et al., ICIP 2019): ``tr(cov(f)^+ cov(E[f|y]))`` with the (1/N) sample
  covariance and a pseudo-inverse (eigenvalues below ``max(N, D) eps lambda_max`` are treated as zero).
* ``hscore-reg`` -- regularised H-score (Ibrahim, Ponomareva, Mazumder, 2022, "Newer is not always
  better"): ``(1 - a) tr(S_a^{-1} cov(E[f|y]))`` with the Ledoit-Wolf shrinkage covariance
  ``S_a = (1 - a) cov(f) + a mu I``, ``mu = tr(cov(f)) / D`` and ``a`` the Ledoit-Wolf (2004) estimate.
* ``frozen`` -- frozen transfer: a linear head trained on the frozen source features of the target's
  rows, scored on held-out rows (the target metric itself; see :func:`frozen_transfer_score`).

Decisions
---------
* Target types. LogME and frozen transfer are defined for classification and regression targets. LEEP,
  NCE and both H-scores are defined through the target's class-conditional distribution; for a
  regression target every entry goes to ``failed`` with a reason pointing at ``logme-full`` / ``frozen``
  (binning a continuous target would add an arbitrary choice no paper validated).
* Source types. LEEP and NCE need a distribution over source *classes*; regression sources go to
  ``failed`` ("needs a classification source"). H-score, LogME and frozen transfer use only features and
  work with every source.
* P1 stores no weights: the entry (kind ``source-model``, shared by all six methods) holds a pointer --
  the fine-tuned model's cache directory name under ``$TASKSCOUT_HOME/models`` and the sha256 of its
  encoder weights. P2 resolves the pointer; a missing or different model puts the entry in ``failed``
  with the command that rebuilds it. The target's features under each source model go through the
  embedding cache, keyed by the fine-tuned weights' fingerprint, so ranking again costs one model load
  per source, and are also kept in memory for the process (several methods on one target share them).
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from taskscout import paths
from taskscout.data.task import Task
from taskscout.errors import PoolError, TaskscoutError
from taskscout.io import read_json, write_json
from taskscout.methods.base import LoadedEntry, MethodScores, SelectionMethod, Target
from taskscout.methods.logme import logme
from taskscout.pool.schema import NAME_PATTERN
from taskscout.pool.store import PoolEntry

if TYPE_CHECKING:
    from taskscout.pool.context import BuildContext

SOURCE_MODEL_KIND = "source-model"
_NAME = re.compile(NAME_PATTERN)  # a single path component: never "..", never a path
_MEMO_SIZE = 64  # (source model, target) feature sets kept in memory: ~1.5 MB each at N=1000, D=384


def _rebuild_hint(source: str) -> str:
    return f"run `taskscout pool build {source} --method logme-full --force` to rebuild it"


# ------------------------------------------------------------------------------------ shared P2 helper


@dataclass(frozen=True)
class SourceOutputs:
    """What a source's fine-tuned model says about the target's rows.

    ``features``: ``(N, D)`` pooled features of the fine-tuned encoder (the input of its head);
    ``logits``: ``(N, K)`` head outputs (class logits, or standardised regression outputs); float64.
    """

    features: np.ndarray
    logits: np.ndarray
    task_type: str

    def probabilities(self) -> np.ndarray:
        """Softmax of the logits over the source's classes."""
        z = self.logits - self.logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predictions(self) -> np.ndarray:
        """The source head's hard predictions (class ids of the source task)."""
        return self.logits.argmax(axis=1)


_OUTPUTS: OrderedDict[tuple[str, str, str, int], SourceOutputs] = OrderedDict()


def source_model_directory(entry: PoolEntry) -> tuple[Path, str]:
    """The fine-tuned model directory an entry points to and the encoder sha256 it was built with."""
    name = entry.meta.get("source_model_dir")
    digest = entry.meta.get("source_model_sha256")
    if not isinstance(name, str) or not isinstance(digest, str) or not _NAME.match(name):
        raise PoolError(
            f"entry {entry.kind}/{entry.source} has no valid source-model pointer; "
            + _rebuild_hint(entry.source)
        )
    return paths.subdir("models") / name, digest


def load_source_outputs(
    entry: PoolEntry, task: Task, *, progress: bool = False, device: Any = "auto"
) -> SourceOutputs:
    """Load the entry's fine-tuned model onto ``device`` and compute its features and head outputs for
    ``task`` (the outputs, in float64 NumPy, do not depend on the device beyond rounding).

    Raises :class:`PoolError` (one line, with the rebuild command) when the model is missing, is not the
    one the entry was built with, or cannot be loaded.
    """
    directory, digest = source_model_directory(entry)
    meta_file = directory / "finetuned.json"
    if not meta_file.exists():
        raise PoolError(
            f"fine-tuned model {directory.name} of source {entry.source!r} is not in {directory.parent}; "
            + _rebuild_hint(entry.source)
        )
    try:
        meta = read_json(meta_file)
        recorded = str(meta["encoder_sha256"])
        train = dict(meta["train_config"])
    except (OSError, ValueError, KeyError, TypeError):
        raise PoolError(
            f"fine-tuned model {directory.name} of source {entry.source!r} has an unreadable finetuned.json; "
            + _rebuild_hint(entry.source)
        ) from None
    if recorded != digest:
        raise PoolError(
            f"fine-tuned model {directory.name} of source {entry.source!r} differs from the one the entry "
            "was built with (checksum mismatch); " + _rebuild_hint(entry.source)
        )
    key = (digest, task.fingerprint(), str(train.get("pooling", "mean")), int(train.get("max_length", 128)))
    if key in _OUTPUTS:
        _OUTPUTS.move_to_end(key)
        return _OUTPUTS[key]

    from taskscout.train.finetune import FineTuned

    try:
        tuned = FineTuned.from_pretrained(
            directory, device=device
        )  # verifies the weights against finetuned.json
    except TaskscoutError as exc:
        raise PoolError(f"source {entry.source!r}: {exc}; " + _rebuild_hint(entry.source)) from None
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise PoolError(
            f"cannot load fine-tuned model {directory.name} of source {entry.source!r} "
            f"({type(exc).__name__}); " + _rebuild_hint(entry.source)
        ) from None
    encoder = tuned.encoder(cache=True)
    features = encoder.encode_task(task, progress=f"{entry.source}: embedding target" if progress else False)
    features = np.asarray(features, dtype=np.float64)
    weight = tuned.model.head.weight.detach().cpu().double().numpy()
    bias = tuned.model.head.bias.detach().cpu().double().numpy()
    outputs = SourceOutputs(features=features, logits=features @ weight.T + bias, task_type=tuned.task_type)
    _OUTPUTS[key] = outputs
    while len(_OUTPUTS) > _MEMO_SIZE:
        _OUTPUTS.popitem(last=False)
    return outputs


# ------------------------------------------------------------------------------------ pure scores


def _class_ids(labels: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"need {n} class labels, got shape {labels.shape}")
    _, ids = np.unique(labels, return_inverse=True)
    return ids.ravel(), int(ids.max()) + 1 if n else 0


def leep_score(probs: np.ndarray, labels: np.ndarray) -> float:
    """LEEP (Nguyen et al. 2020) of source-label probabilities ``probs`` ``(N, Z)`` for target ``labels``.

    ``P(y, z) = 1/N sum_i theta_iz 1[y_i = y]``, ``P(y|z) = P(y, z) / P(z)`` and
    ``LEEP = 1/N sum_i log sum_z P(y_i|z) theta_iz`` (always <= 0; 0 when ``Z`` determines ``Y``).
    """
    theta = np.asarray(probs, dtype=np.float64)
    if theta.ndim != 2 or theta.shape[0] == 0:
        raise ValueError(f"probabilities must be a non-empty (N, Z) matrix, got shape {theta.shape}")
    if np.any(theta < 0) or not np.allclose(theta.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError("each row of probabilities must be non-negative and sum to 1")
    y, classes = _class_ids(labels, theta.shape[0])
    joint = np.zeros((classes, theta.shape[1]))
    np.add.at(joint, y, theta)
    joint /= theta.shape[0]
    marginal = joint.sum(axis=0)
    conditional = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)
    expected = np.einsum("iz,iz->i", theta, conditional[y])
    return float(np.mean(np.log(expected)))


def nce_score(predictions: np.ndarray, labels: np.ndarray) -> float:
    """NCE (Tran et al. 2019): ``-H(Y|Z) = sum_{y,z} P(y,z) log(P(y,z) / P(z))`` from empirical counts of
    hard source predictions ``Z`` and target labels ``Y`` (always <= 0; 0 when ``Z`` determines ``Y``)."""
    z = np.asarray(predictions)
    n = z.shape[0] if z.ndim == 1 else -1
    if n <= 0:
        raise ValueError(f"predictions must be a non-empty 1-D array, got shape {z.shape}")
    y, classes = _class_ids(labels, n)
    _, z_ids = np.unique(z, return_inverse=True)
    joint = np.zeros((classes, int(z_ids.max()) + 1))
    np.add.at(joint, (y, z_ids.ravel()), 1.0)
    joint /= n
    marginal = joint.sum(axis=0)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log((joint / marginal)[nz])))


def _centred_class_means(
    features: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centred features ``(N, D)``, centred class means ``(C, D)`` and class frequencies ``(C,)``."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must be an (N, D) matrix with N >= 2, got shape {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError("features contain NaN or infinite values")
    y, classes = _class_ids(labels, f.shape[0])
    if classes < 2:
        raise ValueError("H-score needs at least 2 classes")
    f = f - f.mean(axis=0)
    counts = np.bincount(y, minlength=classes).astype(np.float64)
    sums = np.zeros((classes, f.shape[1]))
    np.add.at(sums, y, f)
    return f, sums / counts[:, None], counts / f.shape[0]


def h_score(features: np.ndarray, labels: np.ndarray) -> float:
    """H-score (Bao et al. 2019): ``tr(cov(f)^+ cov(E[f|y]))`` with (1/N) covariances.

    ``cov(E[f|y]) = sum_c p_c mu_c mu_c^T`` (centred class means ``mu_c``, frequencies ``p_c``); the
    pseudo-inverse drops eigenvalues below ``max(N, D) * eps * lambda_max`` (numerical rank).

    Degenerate when the centred features have full rank ``N - 1`` (e.g. ``N <= D``, the usual small
    target): ``F cov^+ F^T`` is then ``N`` times the centring projection, so the score is exactly
    ``K - 1`` for every source and a ranking by it is rounding noise. :func:`regularized_h_score`
    is the usable version there (the benchmark shows both).
    """
    f, means, freq = _centred_class_means(features, labels)
    cov = f.T @ f / f.shape[0]
    eigvals, eigvecs = np.linalg.eigh(cov)
    top = float(eigvals.max()) if eigvals.size else 0.0
    if top <= 0:
        raise ValueError("features are constant")
    keep = eigvals > max(f.shape) * np.finfo(np.float64).eps * top
    proj = means @ eigvecs[:, keep]  # (C, r)
    return float(np.sum(freq[:, None] * proj**2 / eigvals[keep]))


def regularized_h_score(features: np.ndarray, labels: np.ndarray) -> float:
    """Shrinkage H-score (Ibrahim et al. 2022): ``(1 - a) tr(S_a^{-1} cov(E[f|y]))`` with ``S_a`` the
    Ledoit-Wolf (2004) covariance of the features and ``a`` its shrinkage (scikit-learn's
    :func:`~sklearn.covariance.ledoit_wolf`: ``S_a = (1 - a) S + a mu I``, ``mu = tr(S) / D``)."""
    from sklearn.covariance import ledoit_wolf

    f, means, freq = _centred_class_means(features, labels)
    shrunk, alpha = ledoit_wolf(f)
    eigvals, eigvecs = np.linalg.eigh(shrunk)
    if float(eigvals.min()) <= 0:
        raise ValueError("features are constant")
    proj = means @ eigvecs
    return float((1.0 - alpha) * np.sum(freq[:, None] * proj**2 / eigvals))


def fold_ids(task: Task, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Deterministic fold of every row (``0..k-1``, ``k = min(folds, N)``); class-stratified for
    classification (each class's rows are spread round-robin over the folds from a random offset).

    Kept instead of scikit-learn's ``StratifiedKFold``: that assigns rows to folds differently, which
    would change every stored ``frozen`` score without a change of any key that identifies them.
    """
    n = len(task)
    k = max(2, min(folds, n))
    rng = np.random.default_rng(seed)
    out = np.empty(n, dtype=np.int64)
    if task.is_classification:
        for cls in np.unique(task.labels):
            members = np.flatnonzero(task.labels == cls)
            members = members[rng.permutation(len(members))]
            out[members] = (np.arange(len(members)) + int(rng.integers(k))) % k
    else:
        out[rng.permutation(n)] = np.arange(n) % k
    return out


def frozen_transfer_score(features: np.ndarray, task: Task, *, folds: int = 5, seed: int = 0) -> float:
    """Held-out score of a linear head trained on frozen ``features`` of ``task``'s rows.

    Protocol: ``folds``-fold cross-validation (stratified for classification, :func:`fold_ids`); in each
    fold the features are standardised with the training rows' statistics and a ridge head with an
    intercept is fitted in closed form -- on one-hot class indicators (prediction = argmax) for
    classification, on standardised targets for regression -- its penalty chosen on the training rows
    only by exact leave-one-out squared error over ``lambda/N in 10^{-4..2}`` (scikit-learn's
    :class:`~sklearn.linear_model.RidgeCV`, efficient LOO, one penalty for all outputs). The out-of-fold
    predictions of all rows are scored with the transfer experiments' own metric
    (:func:`~taskscout.train.scoring.score_predictions`): accuracy, or the mean of Pearson and Spearman.
    """
    from sklearn.linear_model import RidgeCV

    from taskscout.train.scoring import score_predictions

    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(task):
        raise ValueError(f"need ({len(task)}, D) features, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("features contain NaN or infinite values")
    if task.is_classification:
        classes, ids = np.unique(task.labels, return_inverse=True)
        y = np.eye(len(classes))[ids.ravel()]
    else:
        y = task.labels.reshape(len(task), -1).astype(np.float64)
    grid = 10.0 ** np.arange(-4.0, 2.01, 0.5)
    assignment = fold_ids(task, folds, seed)
    predicted = np.zeros_like(y)
    for fold in np.unique(assignment):
        test = assignment == fold
        train = ~test
        mean, std = x[train].mean(axis=0), x[train].std(axis=0)
        std = np.where(std > 0, std, 1.0)
        y_mean, y_std = y[train].mean(axis=0), y[train].std(axis=0)
        y_std = np.where(y_std > 0, y_std, 1.0)
        head = RidgeCV(alphas=grid * int(train.sum())).fit(
            (x[train] - mean) / std, (y[train] - y_mean) / y_std
        )
        predicted[test] = head.predict((x[test] - mean) / std).reshape(int(test.sum()), -1) * y_std + y_mean
    if task.is_classification:
        outputs = classes[predicted.argmax(axis=1)]
    else:
        outputs = predicted[:, 0] if task.labels.ndim == 1 else predicted
    return float(score_predictions(task, outputs)["main"])


# ------------------------------------------------------------------------------------ methods


class SourceModelMethod(SelectionMethod):
    """Base of the methods that score with each source's fine-tuned model (pool kind ``source-model``).

    P1 (shared by all of them): make sure the fine-tuned model exists (trained and cached if needed) and
    store a pointer to it. P2: :func:`load_source_outputs` per entry, then :meth:`score_outputs`.
    """

    kind = SOURCE_MODEL_KIND
    p1_cost = "fine-tune the base encoder per source (cached, shared with ESM-LogME); entry is a pointer"
    p2_reuses = ("logme-full",)  # the target's outputs under each source model are cached per weights
    needs_classification_target: bool = False
    needs_classification_source: bool = False

    def build(self, task: Task, context: BuildContext, out_dir: Path, *, progress: bool = False) -> None:
        """Ensure the source's fine-tuned model is in the model cache and point the entry at it."""
        from taskscout.pool.context import source_samples
        from taskscout.train.finetune import finetuned_model_dir

        config = context.config
        train, _, _ = source_samples(task, config)
        tuned = context.source_model(task, progress=progress)
        directory = finetuned_model_dir(train, config.model, config.train)
        meta_file = directory / "finetuned.json"
        if not meta_file.exists():
            raise TaskscoutError(f"source {task.name!r}: the fine-tuned model was not saved to {directory}")
        digest = str(read_json(meta_file)["encoder_sha256"])
        if tuned.info.get("fingerprint") not in (None, digest[:16]):
            raise TaskscoutError(f"source {task.name!r}: the model in {directory} is not the one just loaded")
        write_json(
            out_dir / "config.json",
            {
                "source_model_dir": directory.name,
                "source_model_sha256": digest,
                "source_model_task_type": tuned.task_type,
                "source_model_outputs": int(tuned.model.head.out_features),
                "source_model_train_config": tuned.config.to_dict(),
                "embedding_dim": int(tuned.model.head.in_features),
            },
        )

    @abstractmethod
    def score_outputs(self, outputs: SourceOutputs, task: Task) -> float:
        """The score of one source given its model's outputs on the target's rows."""

    def check_entry(self, entry: PoolEntry, target: Target) -> str | None:
        if self.needs_classification_target and not target.task.is_classification:
            return f"{self.name} needs a classification target; use logme-full or frozen for regression"
        source_type = entry.meta.get("source_model_task_type", entry.meta.get("task_type"))
        if self.needs_classification_source and source_type != "classification":
            return f"{self.name} needs a classification source; this one is {source_type}"
        return None

    def load_entry(self, entry: PoolEntry, target: Target, *, progress: bool = False) -> SourceOutputs:
        return load_source_outputs(entry, target.task, progress=progress, device=target.device)

    def prepare_target(self, target: Target, protocol: None, *, progress: bool = False) -> None:
        return None

    def score_group(
        self, target: Target, reference: None, group: list[LoadedEntry], out: MethodScores
    ) -> dict[str, float]:
        scores = {}
        for loaded in group:
            try:
                scores[loaded.source] = self.score_outputs(loaded.data, target.task)
            except (ValueError, np.linalg.LinAlgError) as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                out.failed[loaded.source] = f"{self.name} failed: {first}"
        return scores


_P2_LOAD = "load each source model and embed the target with it (seconds per source; cached per weights)"


class LogMEFull(SourceModelMethod):
    """Exact LogME of the target's features under each fine-tuned source encoder (You et al. 2021)."""

    name = "logme-full"
    description = (
        "LogME of the target embedded by each fine-tuned source model (the reference ESM-LogME approximates)"
    )
    p2_cost = _P2_LOAD + "; exact LogME, O(N D^2)"
    p2_reuses = ()

    def score_outputs(self, outputs: SourceOutputs, task: Task) -> float:
        return logme(outputs.features, task.labels, regression=not task.is_classification)


class LEEP(SourceModelMethod):
    """LEEP (Nguyen et al. 2020) of the source head's softmax on the target; classification only."""

    name = "leep"
    description = (
        "LEEP: log expected empirical prediction of the source head (classification source and target)"
    )
    p2_cost = _P2_LOAD + "; O(N Z C)"
    needs_classification_target = True
    needs_classification_source = True

    def score_outputs(self, outputs: SourceOutputs, task: Task) -> float:
        return leep_score(outputs.probabilities(), task.labels)


class NCE(SourceModelMethod):
    """NCE (Tran et al. 2019): negative conditional entropy of target labels given hard source predictions."""

    name = "nce"
    description = "NCE: -H(target label | source head's hard prediction) (classification source and target)"
    p2_cost = _P2_LOAD + "; O(N)"
    needs_classification_target = True
    needs_classification_source = True

    def score_outputs(self, outputs: SourceOutputs, task: Task) -> float:
        return nce_score(outputs.predictions(), task.labels)


class HScore(SourceModelMethod):
    """H-score (Bao et al. 2019) of the fine-tuned features; classification targets."""

    name = "hscore"
    description = "H-score tr(cov(f)^+ cov(E[f|y])) of fine-tuned source features (classification targets)"
    p2_cost = _P2_LOAD + "; O(N D^2 + D^3)"
    needs_classification_target = True

    def score_outputs(self, outputs: SourceOutputs, task: Task) -> float:
        return h_score(outputs.features, task.labels)


class RegularizedHScore(SourceModelMethod):
    """Shrinkage H-score (Ibrahim et al. 2022) with the Ledoit-Wolf covariance; classification targets."""

    name = "hscore-reg"
    description = (
        "H-score with a Ledoit-Wolf shrinkage covariance (Ibrahim et al. 2022; classification targets)"
    )
    p2_cost = _P2_LOAD + "; O(N D^2 + D^3)"
    needs_classification_target = True

    def score_outputs(self, outputs: SourceOutputs, task: Task) -> float:
        return regularized_h_score(outputs.features, task.labels)


class FrozenTransfer(SourceModelMethod):
    """Held-out score of a ridge head on frozen fine-tuned source features (5-fold CV on the target)."""

    name = "frozen"
    description = "Frozen transfer: 5-fold CV score of a linear (ridge) head on frozen source-model features"
    p2_cost = _P2_LOAD + "; 5 SVDs of (0.8 N) x D per source"

    def score_outputs(self, outputs: SourceOutputs, task: Task) -> float:
        return frozen_transfer_score(outputs.features, task)


METHODS = (LogMEFull, LEEP, NCE, HScore, RegularizedHScore, FrozenTransfer)
