"""Readers of Hugging Face datasets: a directory written by ``save_to_disk`` and ``hf:ID[@REV][:CONFIG]``
specs (``datasets.load_dataset``, from the Hub or its local cache)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from taskscout.data.readers.table import RawTable, one_line
from taskscout.data.task import Provenance
from taskscout.errors import DataError
from taskscout.io import sha256_file

HF_DISK_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


def is_saved_dataset(path: Path) -> bool:
    return any((path / marker).is_file() for marker in HF_DISK_MARKERS)


def _import_datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise DataError(
            "reading Hugging Face datasets needs the 'datasets' package; pip install datasets"
        ) from None
    return datasets


def _dir_digest(path: Path) -> str:
    """A sha256 over the relative names and sha256s of every file in a directory."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode())
        digest.update(b"\0")
        digest.update(sha256_file(file).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _class_labels(datasets: Any, features: Any) -> dict[str, list[str]]:
    return {
        str(name): list(feature.names)
        for name, feature in (features or {}).items()
        if isinstance(feature, datasets.ClassLabel)
    }


def _pick_split(splits: list[str], split: str | None, where: str) -> str:
    if split is not None:
        if split not in splits:
            raise DataError(
                f"{where} has no split {split!r}; available splits: {', '.join(map(repr, splits))}; "
                "pass split=... with one of them"
            )
        return split
    if "train" in splits:
        return "train"
    if len(splits) == 1:
        return splits[0]
    raise DataError(f"{where} has splits {', '.join(map(repr, splits))}; pass split=... to choose one")


def read_hf_disk(path: Path, *, split: str | None) -> RawTable:
    datasets = _import_datasets()
    given = str(path)
    try:
        obj = datasets.load_from_disk(given)
    except Exception as exc:  # corrupt or foreign directory: datasets raises many types
        raise DataError(
            f"{given} could not be loaded as a saved Hugging Face dataset ({one_line(exc)}); "
            "re-save it with Dataset.save_to_disk"
        ) from exc
    notes: list[str] = []
    if isinstance(obj, datasets.DatasetDict):
        chosen = _pick_split(list(obj.keys()), split, given)
        ds = obj[chosen]
        source = f"{given} (split {chosen!r})"
    else:
        ds = obj
        source = given
        if split is not None:
            notes.append(f"{given} holds a single dataset; split={split!r} ignored")
    return RawTable(
        frame=ds.to_pandas(),
        source=source,
        default_name=path.resolve().name,
        provenance=Provenance(registry="huggingface", file=given, sha256=_dir_digest(path)),
        class_labels=_class_labels(datasets, ds.features),
        notes=notes,
        given=given,
    )


def read_hf_spec(spec: str, *, split: str | None, config: str | None) -> RawTable:
    body = spec[len("hf:") :].strip()
    ident, _, spec_config = body.partition(":")
    ident, _, revision = ident.partition("@")
    if not ident:
        raise DataError(f"{spec!r} names no dataset; use 'hf:ID', 'hf:ID:CONFIG' or 'hf:ID@REVISION:CONFIG'")
    local = Path(ident)
    if local.is_dir() and is_saved_dataset(local):
        loaded = read_hf_disk(local, split=split)
        loaded.given = spec
        return loaded
    cfg = spec_config or config or None
    datasets = _import_datasets()
    split_name = split or "train"
    where = f"Hugging Face dataset {ident!r}" + (f" (config {cfg!r})" if cfg else "")
    try:
        ds = datasets.load_dataset(ident, cfg, split=split_name, revision=revision or None)
    except Exception as exc:  # network, missing dataset/config/split: many exception types
        raise DataError(
            f"could not load {where} split {split_name!r}: {one_line(exc)}; check the ID, config and split, "
            "and that the Hub is reachable (or the dataset is cached when HF_DATASETS_OFFLINE=1)"
        ) from exc
    if isinstance(ds, datasets.DatasetDict):  # defensive: load_dataset with a split returns a Dataset
        ds = ds[_pick_split(list(ds.keys()), split, where)]
    version = cfg or ""
    if revision:
        version = f"{cfg}@{revision}" if cfg else revision
    default_name = Path(ident.rstrip("/")).name + (f"_{cfg}" if cfg else "")
    return RawTable(
        frame=ds.to_pandas(),
        source=f"{where} split {split_name!r}",
        default_name=default_name,
        provenance=Provenance(registry="huggingface", package=ident, version=version),
        class_labels=_class_labels(datasets, ds.features),
        given=spec,
    )
