"""Make the built-in pool from a built pool: keep some kinds of entry, verify, then swap it in.

    python benchmarks/ship_pool.py $TASKSCOUT_HOME/pools/v2                      # into the package
    python benchmarks/ship_pool.py POOL --to DIR --kind esm --kind textemb --kind vocab

The built-in pool (``src/taskscout/pool_data/default``) holds what `taskscout rank` needs without a
download: by default the ESM, TextEmb and vocabulary entries (a few hundred KB per source). The build
pool also holds the kinds only the benchmark uses (source-model pointers, TaskEmb, TuPaTE, ESM
variants); they are left out. The new pool is assembled and verified beside the target and replaces it
in two renames, so an interrupted run leaves the old pool in place.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from taskscout.errors import TaskscoutError
from taskscout.pool.store import Pool

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TO = ROOT / "src" / "taskscout" / "pool_data" / "default"
SHIPPED_KINDS = ("esm", "textemb", "vocab")


def ship(source: Path, to: Path, kinds: tuple[str, ...]) -> Pool:
    """Copy ``source`` beside ``to`` with only ``kinds``, verify it, and put it at ``to``."""
    pool = Pool(source)  # opening checks that it is a pool
    missing = [k for k in kinds if not (pool.path / "entries" / k).is_dir()]
    if missing:
        raise TaskscoutError(
            f"{source} has no entries of kind {', '.join(missing)}; see `taskscout pool list`"
        )
    staging, old = to.with_name(to.name + ".new"), to.with_name(to.name + ".old")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging, ignore=shutil.ignore_patterns(".lock", ".staging", "*.lock"))
    for kind_dir in (staging / "entries").iterdir():
        if kind_dir.name not in kinds:
            shutil.rmtree(kind_dir)
    shipped = Pool(staging)
    shipped.reindex()  # the index of the kept entries, each verified
    report = shipped.verify()
    if not report.ok or not report.clean:
        problems = list({**report.broken, **report.unindexed}.items())[:3]
        raise TaskscoutError(f"the new pool does not verify: {problems or 'no entries'}")
    sources = sorted({e.source for e in shipped.entries()})
    config = shipped.info.get("build", {}).get("config", {})
    model = config.get("model", "the base encoder")
    recipe = (
        f", source models fine-tuned on up to {config['max_train_rows']:,} rows for "
        f"{config['train']['epochs']:g} epochs"
        if "max_train_rows" in config and "epochs" in config.get("train", {})
        else ""
    )
    shipped.update_info(
        description=(
            f"taskscout built-in pool: {', '.join(kinds)} entries of {len(sources)} catalog tasks for "
            f"{model}{recipe} (see build.config)"
        )
    )
    if to.exists():
        shutil.rmtree(old, ignore_errors=True)
        to.rename(old)
    staging.rename(to)
    shutil.rmtree(old, ignore_errors=True)
    return Pool(to)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("pool", type=Path, help="the built pool to take entries from")
    parser.add_argument(
        "--to", type=Path, default=DEFAULT_TO, help="where the pool goes (default: the package's)"
    )
    parser.add_argument("--kind", "-k", action="append", help="kinds to keep (default: esm, textemb, vocab)")
    args = parser.parse_args()
    try:
        pool = ship(args.pool, args.to, tuple(args.kind or SHIPPED_KINDS))
    except TaskscoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    entries = pool.entries()
    size = sum(f.stat().st_size for f in pool.path.rglob("*") if f.is_file())
    print(
        f"{pool.path}: {len(entries)} entries, {len({e.source for e in entries})} sources, "
        f"{size / 2**20:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
