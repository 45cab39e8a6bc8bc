"""Reading and writing Embedding Space Maps in hf-dataset-selector's (hfselect's) format.

hfselect 0.2.1 saves an ESM as a directory (a Hub repo) holding

* ``model.safetensors``: ``model.weight`` [D, D] and ``model.bias`` [D] (format version ``0.1.0``, the
  legacy layout: ``sequential.0.weight`` / ``sequential.0.bias``), applied as ``x @ W.T + b`` to pooled
  base-model embeddings -- the same map as a taskscout ``esm`` entry;
* ``config.json``: its ``ESMConfig.to_dict()`` (base model, task id/subset/split, text and label
  columns, ``num_examples`` = rows the ESM was trained on, training settings, ``version``) plus
  transformers ``PretrainedConfig`` leftovers. No task type and no pooling are stored.

hfselect itself loads with ``strict=False``, so a file with other tensor names silently gives a random
map. This reader is strict instead: exactly one complete layout, the shapes its config promises, finite
floats, safetensors only (a ``pytorch_model.bin`` is a pickle and is never opened). Every problem is one
line naming the directory (or Hub repo) and nothing is added.

Entries imported from hfselect carry no text hashes (hfselect stores none), so duplicate exclusion is
off for them; ``rank`` says so.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from taskscout.errors import PoolError
from taskscout.io import atomic_dir, sha256_file
from taskscout.methods.esm import ESM_FORMAT, ESM_WEIGHTS, ESMConfig
from taskscout.pool.entry import PoolEntry, validate_array
from taskscout.pool.schema import entry_name
from taskscout.pool.store import Pool

HFSELECT_WEIGHTS = "model.safetensors"
HFSELECT_CONFIG = "config.json"
LEGACY_VERSION = "0.1.0"  # hfselect's format version whose tensors are ``sequential.0.*``
EXPORT_VERSION = "0.2.1"  # the hfselect format version `export_hfselect` writes (``model.*`` tensors)
TEXT_JOIN = " [SEP] "  # how hfselect joins several text columns into one text
# Tensor-name prefixes of the two layouts hfselect has written.
LAYOUTS = {"model.": "current", "sequential.0.": "legacy"}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
MAX_WEIGHTS_BYTES = 512 * 1024**2  # a D = 8192 map in float32 is 256 MiB
MAX_CONFIG_BYTES = 1024**2
ESM_KIND = "esm"
# hfselect's training settings that mean the same in taskscout's ESMConfig.
_SHARED_FIELDS = (
    "task_id",
    "task_subset",
    "task_split",
    "label_column",
    "seed",
    "esm_architecture",
    "esm_num_epochs",
    "esm_batch_size",
    "esm_learning_rate",
    "esm_weight_decay",
    "esm_optimizer",
    "lm_num_epochs",
    "lm_batch_size",
    "lm_learning_rate",
    "lm_weight_decay",
    "lm_optimizer",
)


def hfselect_pooling(base_model_name: str) -> str:
    """The pooling hfselect applies for ``base_model_name`` (decided by the model, never stored).

    BERT models whose name contains ``sentence-transformers`` are mean-pooled, DistilBERT and RoBERTa
    models use the first token, other BERT models the pooler output. The model class is guessed from the
    name, which is what hfselect's published ESMs (``bert-base-multilingual-uncased``) need.
    """
    lowered = base_model_name.lower()
    if "distilbert" in lowered or "roberta" in lowered:
        return "cls"
    if "sentence-transformers" in lowered:
        return "mean"
    return "pooler"


@dataclass
class HfselectESM:
    """An hfselect ESM read and validated: its map (float32) and the taskscout entry metadata."""

    weight: np.ndarray
    bias: np.ndarray
    meta: dict[str, Any]
    name: str  # the source name it gets in a pool


def read_hfselect_dir(
    directory: str | os.PathLike[str],
    *,
    where: str | None = None,
    name: str | None = None,
    task_type: str = "",
    origin: str | None = None,
    revision: str | None = None,
) -> HfselectESM:
    """Read and validate an hfselect ESM directory; problems raise a one-line :class:`PoolError`.

    Args:
        where: how messages name the ESM (default: the directory).
        name: the source name (default: the directory name, or ``origin``'s repo name without ``ESM_``).
        task_type: ``classification`` / ``regression`` if known (hfselect does not record it).
        origin, revision: where it came from (a ``hub:USER/REPO`` and its commit sha), kept in the metadata.
    """
    directory = Path(directory)
    where = where or f"hfselect ESM {directory}"
    if not directory.is_dir():
        raise PoolError(f"{where}: not a directory; pass an hfselect ESM directory or hub:USER/REPO")
    config = _read_config(directory, where)
    weight, bias, layout = _read_weights(directory, where, config)
    meta = _entry_meta(
        config, weight.shape[0], layout, task_type, origin or str(directory.resolve()), revision
    )
    if name is None:
        stem = origin.rsplit("/", 1)[-1] if origin else directory.name
        name = stem.removeprefix("ESM_") or stem
    try:
        source = entry_name(name)
    except PoolError as exc:
        raise PoolError(f"{where}: {exc}; pass a source name with --name") from None
    return HfselectESM(weight, bias, meta, source)


def _read_config(directory: Path, where: str) -> dict[str, Any]:
    file = directory / HFSELECT_CONFIG
    if not file.is_file():
        raise PoolError(f"{where}: no config.json; this is not an hfselect ESM")
    if file.stat().st_size > MAX_CONFIG_BYTES:
        raise PoolError(f"{where}: config.json is larger than {MAX_CONFIG_BYTES} bytes; not an hfselect ESM")
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise PoolError(f"{where}: config.json is not valid JSON") from None
    if not isinstance(config, dict):
        raise PoolError(f"{where}: config.json is not a JSON object")
    if not isinstance(config.get("base_model_name"), str) or "esm_embedding_dim" not in config:
        raise PoolError(
            f"{where}: config.json has no base_model_name / esm_embedding_dim; this is not an hfselect ESM"
        )
    if not config["base_model_name"].strip():
        raise PoolError(f"{where}: config.json has an empty base_model_name")
    architecture = config.get("esm_architecture", "linear")
    if architecture != "linear":
        raise PoolError(f"{where}: esm_architecture {architecture!r} is not supported (only 'linear')")
    dim = config["esm_embedding_dim"]
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise PoolError(f"{where}: esm_embedding_dim {dim!r} is not a positive integer")
    return config


def _read_weights(directory: Path, where: str, config: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, str]:
    from safetensors import safe_open

    file = directory / HFSELECT_WEIGHTS
    if not file.is_file():
        pickles = sorted(p.name for p in directory.iterdir() if p.name.endswith(PICKLE_SUFFIXES))
        if pickles:
            raise PoolError(
                f"{where}: holds only {pickles[0]}, a pickle, which taskscout never loads; re-save the ESM "
                "as model.safetensors"
            )
        raise PoolError(f"{where}: no model.safetensors; this is not an hfselect ESM")
    if file.stat().st_size > MAX_WEIGHTS_BYTES:
        raise PoolError(f"{where}: model.safetensors is larger than {MAX_WEIGHTS_BYTES} bytes")
    try:
        with safe_open(str(file), framework="np") as handle:
            names = sorted(handle.keys())
            shapes = {k: tuple(handle.get_slice(k).get_shape()) for k in names}
            layout = _layout(names, where, config)
            expected = {
                f"{layout}weight": (config["esm_embedding_dim"],) * 2,
                f"{layout}bias": (config["esm_embedding_dim"],),
            }
            for key, shape in expected.items():
                if shapes[key] != shape:
                    raise PoolError(
                        f"{where}: tensor {key} has shape {list(shapes[key])}, expected {list(shape)} "
                        f"(esm_embedding_dim {config['esm_embedding_dim']})"
                    )
            tensors = {k: handle.get_tensor(k) for k in expected}
    except PoolError:
        raise
    except Exception as exc:  # safetensors raises its own error types for corrupt headers and dtypes
        raise PoolError(f"{where}: unreadable model.safetensors ({str(exc).splitlines()[0][:120]})") from None
    arrays = [
        validate_array(tensors[f"{layout}{k}"], f"{where}: tensor {layout}{k}", dtype_kinds="f")
        for k in ("weight", "bias")
    ]
    return arrays[0].astype(np.float32), arrays[1].astype(np.float32), LAYOUTS[layout]


def _layout(names: list[str], where: str, config: dict[str, Any]) -> str:
    """The layout prefix whose two tensors are exactly the file's tensors, else a one-line error."""
    for prefix in LAYOUTS:
        if set(names) == {f"{prefix}weight", f"{prefix}bias"}:
            return prefix
    shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    legacy = str(config.get("version")) == LEGACY_VERSION
    wanted = (
        "sequential.0.weight/bias" if legacy else "model.weight/bias (or legacy sequential.0.weight/bias)"
    )
    raise PoolError(f"{where}: model.safetensors holds tensors [{shown}], expected exactly {wanted}")


def _entry_meta(
    config: dict[str, Any], dim: int, layout: str, task_type: str, origin: str, revision: str | None
) -> dict[str, Any]:
    """The taskscout metadata of an hfselect ESM, mapped field by field."""
    columns = config.get("text_column", "text")
    columns = [str(c) for c in columns] if isinstance(columns, list) else [str(columns or "text")]
    language = config.get("language")
    num_examples = config.get("num_examples")
    base_model = config["base_model_name"]
    esm = ESMConfig(
        base_model_name=base_model,
        base_model_fingerprint="",  # hfselect records the model name only, never its weights
        base_model_pooling=hfselect_pooling(base_model),
        base_model_max_length=128,  # hfselect truncates every text to 128 tokens
        text_column=columns[0],
        task_type=task_type,
        num_examples=num_examples if isinstance(num_examples, int) and num_examples >= 0 else 0,
        language=language if isinstance(language, str) else "",
        esm_embedding_dim=dim,
        esm_fit="hfselect",
        developers=str(config.get("developers") or ""),
        version="",  # the taskscout version that built the entry: none did
        **{k: config[k] for k in _SHARED_FIELDS if config.get(k) is not None},
    )
    for key in ("task_id", "task_split", "label_column"):
        setattr(esm, key, str(getattr(esm, key)))
    meta = esm.to_dict()
    meta.update(
        {
            "format": ESM_FORMAT,
            "base_model_dim": dim,
            "origin_format": "hfselect",
            "origin": origin,
            "origin_revision": revision,
            "hfselect_version": str(config.get("version") or ""),
            "hfselect_tensor_layout": layout,
            "text_columns": columns,
            "text_join": TEXT_JOIN if len(columns) > 1 else None,
            # hfselect embeds every pair target as one joined text; ranking does the same for this entry.
            "text_join_targets": TEXT_JOIN,
        }
    )
    return meta


# ---------------------------------------------------------------------------------------------- a pool
def check_pool_dimension(pool: Pool, esm: HfselectESM, where: str) -> None:
    """Refuse an ESM whose width differs from the pool's entries for the same base model."""
    base_model = esm.meta["base_model_name"]
    dims = {e.dim for e in pool.entries(ESM_KIND, base_model=base_model) if e.dim}
    if dims and esm.meta["base_model_dim"] not in dims:
        raise PoolError(
            f"{where}: a {esm.meta['base_model_dim']}-dimensional map, but pool {pool.path} holds "
            f"{'/'.join(map(str, sorted(dims)))}-dimensional entries for {base_model}; not added"
        )


def add_esms(pool: Pool, esms: list[tuple[HfselectESM, str]], *, overwrite: bool = False) -> list[PoolEntry]:
    """Add validated hfselect ESMs (each with how messages name it) to ``pool``, all or nothing."""
    pool._require_writable()
    existing = {e.source for e in pool.entries(ESM_KIND)}
    seen: dict[str, str] = {}
    for esm, where in esms:
        if esm.name in seen:
            raise PoolError(f"{where}: source name {esm.name!r} is also {seen[esm.name]}; pass --name")
        seen[esm.name] = where
        if esm.name in existing and not overwrite:
            raise PoolError(
                f"{where}: pool {pool.path} already has an esm entry {esm.name!r}; pass --overwrite or --name"
            )
        check_pool_dimension(pool, esm, where)
    with tempfile.TemporaryDirectory(prefix="taskscout-hfselect-") as tmp:
        items = []
        for i, (esm, _) in enumerate(esms):
            file = Path(tmp) / f"{i}.safetensors"
            _save_map(file, esm.weight, esm.bias)
            items.append((ESM_KIND, esm.name, {ESM_WEIGHTS: file}, {**esm.meta, "sha256": sha256_file(file)}))
        return pool.add_entries(items)


def _save_map(file: Path, weight: np.ndarray, bias: np.ndarray, prefix: str = "") -> None:
    """A float32 map as safetensors: taskscout's names (``weight``/``bias``) or hfselect's (``model.``)."""
    from safetensors.numpy import save_file

    tensors = {f"{prefix}weight": weight, f"{prefix}bias": bias}
    # transformers' loader expects "pt" in the metadata of the files it reads.
    metadata = {"format": "pt"} if prefix else {"format": ESM_FORMAT}
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, str(file), metadata)


# ---------------------------------------------------------------------------------------------- export
def hfselect_config(entry: PoolEntry) -> dict[str, Any]:
    """The ``config.json`` hfselect's ``ESMConfig`` reads for a taskscout ESM entry."""
    meta = entry.meta
    columns = meta.get("text_columns")
    if not isinstance(columns, list) or not columns:
        columns = [meta.get("text_column") or "text"]
        if meta.get("text_pair_column"):
            columns.append(meta["text_pair_column"])
    dim = int(entry.dim or meta.get("esm_embedding_dim") or 0)
    config: dict[str, Any] = {
        "base_model_name": entry.base_model,
        "task_id": str(meta.get("task_id") or entry.source),
        "task_subset": meta.get("task_subset"),
        "text_column": columns if len(columns) > 1 else columns[0],
        "label_column": meta.get("label_column") or "label",
        "task_split": meta.get("task_split") or "train",
        "num_examples": int(meta.get("num_examples") or 0),
        "seed": meta.get("seed"),
        "language": meta.get("language") or None,
        "esm_architecture": "linear",
        "esm_embedding_dim": dim,
        "developers": meta.get("developers") or None,
        "version": EXPORT_VERSION,
        # PretrainedConfig fields hfselect's saved configs carry.
        "_name_or_path": "",
        "architectures": None,
        "model_type": "",
        "return_dict": True,
    }
    for key in _SHARED_FIELDS:
        if key.startswith(("lm_", "esm_")) and key != "esm_architecture":
            config[key] = meta.get(key)
    # What hfselect does not record but a reader of the export may want: how taskscout built the map.
    config["taskscout"] = {
        "source": entry.source,
        "task_type": meta.get("task_type") or None,
        "base_model_fingerprint": entry.fingerprint or None,
        "base_model_pooling": meta.get("base_model_pooling"),
        "esm_fit": meta.get("esm_fit"),
    }
    return config


def export_hfselect(
    pool: Pool, out_dir: str | os.PathLike[str], sources: list[str] | None = None, *, kind: str = ESM_KIND
) -> tuple[list[Path], list[str]]:
    """Write each linear ESM entry as an hfselect ESM directory ``out_dir/<source>``.

    Returns the directories written and warnings (entries whose pooling is not the one hfselect applies
    to their base model: hfselect would embed targets differently and score them differently). Entries
    are verified first; a non-linear map is refused.
    """
    out_dir = Path(out_dir)
    chosen = [e for e in pool.entries(kind) if not sources or e.source in sources]
    unknown = sorted(set(sources or []) - {e.source for e in chosen})
    if unknown:
        raise PoolError(f"pool {pool.path} has no {kind} entry for {unknown[0]!r}; see `taskscout pool list`")
    if not chosen:
        raise PoolError(f"pool {pool.path} has no {kind} entries to export")
    written, warnings = [], []
    maps = []
    for entry in chosen:
        tensors = entry.load_tensors(ESM_WEIGHTS)  # verifies the checksums
        if set(tensors) != {"weight", "bias"} or entry.meta.get("esm_architecture", "linear") != "linear":
            raise PoolError(f"pool entry {entry.label}: not a linear map; hfselect reads linear ESMs only")
        weight, bias = tensors["weight"], tensors["bias"]
        if weight.ndim != 2 or weight.shape[0] != weight.shape[1] or bias.shape != (weight.shape[0],):
            raise PoolError(
                f"pool entry {entry.label}: map {weight.shape} is not square; hfselect maps D -> D only"
            )
        pooling = entry.meta.get("base_model_pooling")
        if pooling != hfselect_pooling(entry.base_model):
            warnings.append(
                f"{entry.label}: built with {pooling} pooling, but hfselect pools {entry.base_model} with "
                f"{hfselect_pooling(entry.base_model)}; its hfselect scores will differ from taskscout's"
            )
        maps.append((entry, weight, bias))
    for entry, _, _ in maps:
        # An earlier export of the same source is replaced; anything else under that name is never touched.
        target = out_dir / entry.source
        if target.is_symlink() or (target.exists() and not _is_exported_esm(target)):
            raise PoolError(
                f"{target} exists and is not an hfselect ESM directory; export to another directory"
            )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PoolError(f"cannot create {out_dir}: {exc.strerror or exc}") from None
    for entry, weight, bias in maps:
        target = out_dir / entry.source
        try:
            with atomic_dir(target) as tmp:
                _save_map(tmp / HFSELECT_WEIGHTS, weight, bias, prefix="model.")
                text = json.dumps(hfselect_config(entry), indent=2, sort_keys=True) + "\n"
                (tmp / HFSELECT_CONFIG).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise PoolError(f"cannot write hfselect ESM {target}: {exc.strerror or exc}") from None
        written.append(target)
    return written, warnings


def _is_exported_esm(directory: Path) -> bool:
    """A directory holding only an hfselect ESM's two files (what an earlier export wrote)."""
    if not directory.is_dir():
        return False
    return {p.name for p in directory.iterdir()} <= {HFSELECT_CONFIG, HFSELECT_WEIGHTS}
