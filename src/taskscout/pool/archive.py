"""Reading and writing pool archives (``.tar.gz``) without trusting them.

Members are checked by this code, not by ``tarfile``'s extraction filters (whose protection could be
bypassed on Python 3.11.7, CVE-2025-4517): only regular files and directories in the pool layout are
accepted, files are created by this code (``O_EXCL | O_NOFOLLOW``, the user's umask), and the total size,
file count and compression ratio are capped before anything is written.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

from taskscout.errors import PoolError
from taskscout.io import read_json, write_json
from taskscout.pool.entry import label, verify_entry_dir
from taskscout.pool.schema import CONFIG_FILE, IndexFile, check_name, migrate_config_v1, parse_info, parse_row

RATIO_FLOOR = 64 * 1024**2  # below this much data the compression ratio is not checked


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


# ---------------------------------------------------------------------------------------------- archives
def _member_parts(name: str, archive: Path) -> list[str]:
    """The validated path components of an archive member in the pool layout, or a :class:`PoolError`."""
    bad = f"{archive}: member {name!r} is not part of a pool's layout; not imported"
    if not name or "\\" in name or "\x00" in name or name.startswith("/"):
        raise PoolError(bad)
    parts = name.removeprefix("./").rstrip("/").split("/")
    try:
        for part in parts:
            check_name(part, "member name")
    except PoolError:
        raise PoolError(bad) from None
    return parts


def unpack_checked(archive: Path, out: Path, *, max_bytes: int, max_files: int, max_ratio: float) -> None:
    """Unpack ``archive`` into ``out`` checking every member ourselves (no reliance on tarfile filters).

    Accepted: regular files ``pool.json``, ``index.json`` and ``entries/<kind>/<source>/<file>`` and the
    directories above them; anything else (links, devices, sparse files, absolute or parent paths,
    duplicates, other names) rejects the whole archive. Files are created by this code with the user's
    umask, never with the member's mode or owner.
    """
    out.mkdir()
    archive_size = max(1, archive.stat().st_size)
    total = files = 0
    seen: set[tuple[str, ...]] = set()
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                parts = _member_parts(member.name, archive)
                if member.isdir():
                    depth_ok = parts[0] == "entries" and len(parts) <= 3
                else:
                    depth_ok = parts in (["pool.json"], ["index.json"]) or (
                        parts[0] == "entries" and len(parts) == 4
                    )
                if member.isdir() and depth_ok:
                    continue  # directories are created from the files' paths
                if not member.isfile() or member.issparse() or not depth_ok:
                    what = (
                        "a link or special file" if not (member.isfile() or member.isdir()) else "misplaced"
                    )
                    raise PoolError(f"{archive}: member {member.name!r} is {what}; not imported")
                key = tuple(parts)
                if key in seen:
                    raise PoolError(f"{archive}: member {member.name!r} appears twice; not imported")
                seen.add(key)
                files += 1
                total += member.size
                if files > max_files:
                    raise PoolError(
                        f"{archive} holds more than {max_files:,} files; raise --max-files to import it"
                    )
                if total > max_bytes:
                    raise PoolError(
                        f"{archive} unpacks to more than {max_bytes:,} bytes; raise --max-bytes to import it"
                    )
                if total > RATIO_FLOOR and total > max_ratio * archive_size:
                    raise PoolError(
                        f"{archive} unpacks to over {max_ratio:g} times its size (a decompression bomb?); "
                        "raise --max-ratio to import it"
                    )
                dest = out.joinpath(*parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None  # a regular file always has a data stream
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
                with os.fdopen(fd, "wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise PoolError(
            f"cannot read pool archive {archive}: {(str(exc) or type(exc).__name__).splitlines()[0]}"
        ) from None


def verify_archive(unpacked: Path, archive: Path) -> list[tuple[str, str]]:
    """Verify an unpacked archive's entries against the checksums it claims; returns (kind, source) keys.

    Version 2 archives claim each ``config.json`` checksum in their ``index.json`` and each file's in the
    config; version 1 archives (no index) claim only the files' checksums, in the configs, which are
    migrated to version 2 here.
    """
    try:
        info = parse_info(read_json(unpacked / "pool.json"), f"{archive}: pool.json")
    except (OSError, ValueError):
        raise PoolError(f"{archive} is not a taskscout pool archive (no readable pool.json)") from None
    entries_root = unpacked / "entries"
    present = sorted(
        (k.name, s.name)
        for k in (entries_root.iterdir() if entries_root.is_dir() else [])
        for s in k.iterdir()
    )
    claims: dict[tuple[str, str], str | None] = {}
    if info.format_version >= 2:
        try:
            index = IndexFile.model_validate(read_json(unpacked / "index.json"))
        except Exception:
            raise PoolError(f"{archive}: index.json is missing or invalid; not imported") from None
        for number, raw in enumerate(index.entries, start=1):
            row = parse_row(raw, f"{archive}: index.json row {number}")
            claims[(row.kind, row.source)] = row.config_sha256
        unclaimed = sorted(set(present) - set(claims))
        if unclaimed:
            raise PoolError(f"{archive}: entry {label(*unclaimed[0])} is not in its index.json; not imported")
        missing = sorted(set(claims) - set(present))
        if missing:
            raise PoolError(f"{archive}: entry {label(*missing[0])} is listed but missing; not imported")
    else:
        for kind, source in present:
            directory = entries_root / kind / source
            try:
                data = read_json(directory / CONFIG_FILE)
            except (OSError, ValueError):
                raise PoolError(
                    f"{archive}: entry {label(kind, source)} has no readable config.json"
                ) from None
            if not isinstance(data, dict):
                raise PoolError(f"{archive}: entry {label(kind, source)}: config.json is not an object")
            write_json(directory / CONFIG_FILE, migrate_config_v1(data, kind))
            claims[(kind, source)] = None
    for (kind, source), digest in sorted(claims.items()):
        verify_entry_dir(entries_root / kind / source, f"{label(kind, source)} in {archive}", digest)
    return sorted(claims)
