"""The typed on-disk format of a source pool (format version 2).

Everything a pool holds is parsed into these models before it is used, whether it comes from the
user's own pool, the built-in one or a stranger's archive:

* ``pool.json``: :class:`PoolInfo`;
* ``index.json``: :class:`IndexFile`, one :class:`IndexRow` per entry: its kind and source (which alone
  decide where the entry lives, ``entries/<kind>/<source>/``), the sha256 of its ``config.json`` and a
  copy of that config;
* ``entries/<kind>/<source>/config.json``: :class:`EntryConfig`, the entry's metadata and the sha256 of
  every other file of the entry.

Names (kinds, sources, file names) are single path components from a small alphabet, so no name can
point outside its directory. Version 1 pools (no config checksum, kind/source allowed in the config)
are migrated by :func:`migrate_config_v1`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from taskscout.errors import PoolError

POOL_FORMAT = "taskscout-pool"
POOL_FORMAT_VERSION = 2
CONFIG_FILE = "config.json"

# One path component: starts with a letter or digit (so never "." or ".."), no separators, no spaces.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_NAME = re.compile(NAME_PATTERN)
SHA256_PATTERN = r"^[0-9a-f]{64}$"

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Sha256 = Annotated[str, StringConstraints(pattern=SHA256_PATTERN)]

# Keys that once could override where an entry lives; the directory layout decides that now.
LAYOUT_KEYS = ("kind", "source")


def check_name(value: object, what: str = "name") -> str:
    """``value`` if it is a valid pool name (kind, source, file), else a one-line :class:`PoolError`."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise PoolError(
            f"invalid {what} {value!r}: use 1-128 letters, digits, '_', '-' and '.', starting with a letter "
            "or digit"
        )
    return value


def entry_name(task_name: str) -> str:
    """The pool name of a task: characters outside ``[A-Za-z0-9._-]`` become ``_`` (``my data (1)`` ->
    ``my_data_1_``), so a file with any name can be a source; a name with nothing usable is an error."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", task_name).lstrip("._-")[:128]
    return check_name(name, f"source name (from task {task_name!r})")


class PoolInfo(BaseModel):
    """``pool.json``: what the pool is and how it was built."""

    model_config = ConfigDict(extra="allow")

    format: Literal["taskscout-pool"]
    format_version: int = Field(ge=1)
    description: str = ""
    build: dict[str, Any] = Field(default_factory=dict)


class EntryConfig(BaseModel):
    """An entry's ``config.json``: shared source metadata, the method's own fields, and file checksums.

    Only the fields every reader relies on are typed; method-specific fields are kept as they are
    (``extra="allow"``) and validated by the method that reads them.
    """

    model_config = ConfigDict(extra="allow")

    base_model_name: str = ""
    base_model_fingerprint: str = ""
    base_model_dim: int | None = Field(default=None, ge=1)
    base_model_pooling: str = "mean"
    base_model_max_length: int = Field(default=128, ge=1)
    task_type: str = ""
    language: str = ""
    num_examples: int = Field(default=0, ge=0)
    hash_sample_fraction: float = Field(default=1.0, gt=0.0, le=1.0)
    files: dict[Name, Sha256] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _layout_decides(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in LAYOUT_KEYS:
                if key in data:
                    raise ValueError(f"config.json must not set {key!r} (the directory layout decides it)")
            files = data.get("files")
            if isinstance(files, dict) and CONFIG_FILE in files:
                raise ValueError("files must not list config.json (its checksum is in the index)")
        return data

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class IndexRow(BaseModel):
    """One entry as ``index.json`` lists it."""

    model_config = ConfigDict(extra="forbid")

    kind: Name
    source: Name
    config_sha256: Sha256
    meta: EntryConfig


class IndexFile(BaseModel):
    """``index.json``; rows are validated one by one (a bad row is skipped, not fatal)."""

    model_config = ConfigDict(extra="forbid")

    format_version: Literal[2]
    entries: list[Any]


def one_line(error: ValidationError) -> str:
    """A pydantic error as one short line: the first problem and where it is."""
    first = error.errors()[0]
    where = ".".join(p if isinstance(p, str) and p.isprintable() else repr(p) for p in first.get("loc", ()))
    where = where[:80] or "value"
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"


ModelT = TypeVar("ModelT", bound=BaseModel)


def _validated(model: type[ModelT], data: dict[str, Any], where: str, what: str) -> ModelT:
    """``model`` validated from ``data``; a failure is one :class:`PoolError` naming ``where``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PoolError(f"{where}: invalid {what} ({one_line(exc)})") from None


def parse_config(data: Any, where: str) -> EntryConfig:
    """Validate an entry's config; problems raise one-line :class:`PoolError` naming ``where``."""
    if not isinstance(data, dict):
        raise PoolError(f"{where}: config.json must be a JSON object, not {type(data).__name__}")
    return _validated(EntryConfig, data, where, "config.json")


def parse_row(data: Any, where: str) -> IndexRow:
    if not isinstance(data, dict):
        raise PoolError(f"{where}: an index row must be a JSON object, not {type(data).__name__}")
    return _validated(IndexRow, data, where, "index row")


def parse_info(data: Any, where: str) -> PoolInfo:
    if not isinstance(data, dict):
        raise PoolError(f"{where} must be a JSON object, not {type(data).__name__}; restore or rebuild it")
    if data.get("format") != POOL_FORMAT:
        raise PoolError(f"{where} is not a taskscout pool file (format {data.get('format')!r})")
    info = _validated(PoolInfo, data, where, "pool.json")
    if info.format_version > POOL_FORMAT_VERSION:
        raise PoolError(
            f"{where} has format version {info.format_version}; this taskscout reads up to "
            f"{POOL_FORMAT_VERSION}: upgrade taskscout"
        )
    return info


def migrate_config_v1(data: dict[str, Any], kind: str) -> dict[str, Any]:
    """A version-1 entry config in the version-2 form.

    Layout keys are dropped (version 1 let them override the directory), and ``base_model_dim`` -- the
    encoder width every compatibility check compares -- is recorded where the kind says what it is.
    """
    out = {k: v for k, v in data.items() if k not in LAYOUT_KEYS}
    if "base_model_dim" not in out:
        dim = out.get("esm_embedding_dim") if kind.startswith("esm") else None
        if dim is None and kind in ("textemb", "taskemb", "source-model"):
            dim = out.get("embedding_dim")
        if isinstance(dim, int) and not isinstance(dim, bool) and dim > 0:
            out["base_model_dim"] = dim
    return out
