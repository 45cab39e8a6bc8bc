"""One typed config layer: frozen dataclasses with one way to dump (:func:`config_dict`) and one way
to hash (:func:`json_key`, :func:`config_hash`).

Every config that keys something stored -- transfer protocols (committed runs), fine-tuned model
caches, TuPaTE caches, pool entries -- derives from :class:`Config`. The dict is plain JSON (nested
configs become dicts, tuples become lists), so a hash of it is the hash of what is written to disk.
Fields added after a config was first hashed are listed in the class's ``_LATER_FIELDS`` with their
default and left out of the dict while at it, so existing hashes stay what they were.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, ClassVar, Self


def json_key(obj: Any, length: int | None = None) -> str:
    """The sha256 (hex, first ``length`` characters) of ``obj`` as key-sorted compact JSON.

    The one hash of every cache key and config hash: ``json.dumps(obj, sort_keys=True)`` with the
    standard separators, so keys computed before this helper existed are unchanged.
    """
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:length]


def _plain(value: Any) -> Any:
    if isinstance(value, Config):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return config_dict(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def config_dict(config: Any) -> dict[str, Any]:
    """The plain-JSON dict of a dataclass config, without its later fields that are at their default."""
    later: dict[str, Any] = getattr(config, "_LATER_FIELDS", {})
    data = {}
    for spec in dataclasses.fields(config):
        value = getattr(config, spec.name)
        if spec.name in later and value == later[spec.name]:
            continue
        data[spec.name] = _plain(value)
    return data


def config_hash(config: Any, length: int | None = 12) -> str:
    """:func:`json_key` of :func:`config_dict`: what identifies a config in stored results."""
    return json_key(config_dict(config), length)


def _default(spec: dataclasses.Field) -> Any:
    if spec.default is not dataclasses.MISSING:
        return spec.default
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return None


class Config:
    """Base of the frozen dataclass configs: ``to_dict`` / ``from_dict`` / ``hash``.

    Subclasses are ``@dataclass(frozen=True)`` and may set ``_LATER_FIELDS``. ``from_dict`` ignores
    keys it does not know (written by a later version), turns lists back into tuples where the field's
    default is a tuple, and nested dicts into the nested config of the field's default.
    """

    _LATER_FIELDS: ClassVar[dict[str, Any]] = {}

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON (see :func:`config_dict`)."""
        return config_dict(self)

    def hash(self, length: int | None = 12) -> str:
        """The config's hash (see :func:`config_hash`)."""
        return config_hash(self, length)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """The config written as ``data`` by :meth:`to_dict` (unknown keys are ignored)."""
        values = {}
        for spec in dataclasses.fields(cls):  # type: ignore[arg-type]
            if spec.name not in data:
                continue
            value, default = data[spec.name], _default(spec)
            if isinstance(default, Config) and isinstance(value, dict):
                value = type(default).from_dict(value)
            elif isinstance(default, tuple) and isinstance(value, list):
                value = tuple(value)
            values[spec.name] = value
        return cls(**values)
