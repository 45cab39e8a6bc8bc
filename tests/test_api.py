"""The public API as users call it: ``import taskscout`` and the names it exposes, the README's example,
rankings read back from JSON, silence with ``progress=False``, and methods from other packages."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import taskscout
from taskscout.errors import DataError
from taskscout.pool.build import build_pool
from taskscout.pool.config import BuildConfig
from taskscout.pool.store import Pool
from taskscout.train.config import TrainConfig
from tests.conftest import make_task

README = Path(__file__).resolve().parents[1] / "README.md"
PUBLIC = [
    "rank",
    "Ranking",
    "RankedSource",
    "Task",
    "load_task",
    "LoadOptions",
    "Pool",
    "open_pool",
    "get_method",
    "list_methods",
    "SelectionMethod",
    "logme",
    "esm_logme",
]


@pytest.fixture(scope="module")
def textemb_pool(tiny_model_dir, tmp_path_factory):
    """Two sources with TextEmb entries (no fine-tuning: the cheapest P1 there is)."""
    root = tmp_path_factory.mktemp("api-pool")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TASKSCOUT_HOME", str(root / "home"))
        pool = Pool.create(root / "pool")
        config = BuildConfig(
            model=str(tiny_model_dir),
            max_train_rows=32,
            max_fit_texts=40,
            max_eval_rows=10,
            train=TrainConfig(epochs=1, batch_size=16, max_length=32),
        )
        sources = [make_task("src_a", n=80, seed=1), make_task("src_b", n=80, classes=3, seed=2)]
        results = build_pool(pool, sources, config, methods=["textemb"], progress=False)
    assert [r.status for r in results] == ["built"] * 2, results
    return pool.path


def test_public_names_are_exported_documented_and_listed():
    assert set(PUBLIC) <= set(taskscout.__all__)
    assert set(taskscout.__all__) == {"__version__", *taskscout._EXPORTS}  # every export is importable
    assert set(PUBLIC) <= set(dir(taskscout))
    for name in PUBLIC:
        value = getattr(taskscout, name)
        assert value.__doc__ and value.__doc__.strip(), f"{name} has no docstring"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        taskscout.nope  # noqa: B018


def test_public_methods_of_public_classes_have_docstrings():
    for cls in (taskscout.Ranking, taskscout.RankedSource, taskscout.Pool, taskscout.SelectionMethod):
        for name, member in vars(cls).items():
            if callable(member) and not name.startswith("_"):
                assert getattr(member, "__doc__", None), f"{cls.__name__}.{name} has no docstring"


def test_rank_works_twice_in_one_process_and_round_trips(textemb_pool, tmp_path):
    target = make_task("target", n=40, seed=9)
    first = taskscout.rank(target, pool=textemb_pool, method="textemb", progress=False)
    second = taskscout.rank(target, pool=textemb_pool, method="textemb", progress=False)
    assert callable(taskscout.rank)
    assert first.scores() == second.scores() and set(first.scores()) == {"src_a", "src_b"}
    assert isinstance(first, taskscout.Ranking) and isinstance(first.sources[0], taskscout.RankedSource)
    text = first.to_json(tmp_path / "ranking.json")
    assert taskscout.Ranking.from_json(text) == first
    assert taskscout.Ranking.from_json(tmp_path / "ranking.json") == first
    assert taskscout.Ranking.from_json(str(tmp_path / "ranking.json")) == first
    frame = first.to_pandas()
    assert list(frame["source"]) == [s.source for s in first.sources] and frame["rank"].tolist() == [1, 2]


def test_rank_twice_in_a_fresh_process(textemb_pool, tmp_path):
    """The original bug, reproduced as users hit it: a new interpreter, ``import taskscout``, two calls."""
    import os
    import subprocess
    import sys

    target = make_task("target", n=40, seed=9)
    frame = pd.DataFrame({"text": target.texts, "label": [target.label_names[i] for i in target.labels]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    script = (
        "import taskscout\n"
        "from taskscout import rank\n"
        f"a = taskscout.rank({str(tmp_path / 't.csv')!r}, pool={str(textemb_pool)!r}, method='textemb', "
        "progress=False)\n"
        f"b = taskscout.rank({str(tmp_path / 't.csv')!r}, pool={str(textemb_pool)!r}, method='textemb', "
        "progress=False)\n"
        "assert rank is taskscout.rank and a.scores() == b.scores() and len(a) == 2\n"
        "print('ok')\n"
    )
    src = str(Path(taskscout.__file__).resolve().parents[1])
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": src},
        timeout=300,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
    assert done.stderr == ""  # progress=False: nothing printed, also not by transformers


def test_timings_are_seconds_only(textemb_pool):
    ranking = taskscout.rank(
        make_task("target", n=40, seed=9), pool=textemb_pool, method="textemb", progress=False
    )
    assert set(ranking.timings) == {
        "load_target",
        "load_model",
        "embed_target",
        "score",
        "score_per_source",
        "total",
    }
    assert all(0 <= v <= ranking.timings["total"] + 1e-6 for v in ranking.timings.values())
    assert ranking.duplicate_rows_dropped == 0


def test_rank_takes_a_configured_method_instance(textemb_pool):
    method = taskscout.get_method("textemb")
    assert isinstance(method, taskscout.SelectionMethod)
    target = make_task("target", n=40, seed=9)
    by_name = taskscout.rank(target, pool=textemb_pool, method="textemb", progress=False)
    by_instance = taskscout.rank(target, pool=textemb_pool, method=method, progress=False)
    assert by_instance.scores() == by_name.scores()
    with pytest.raises(taskscout.errors.TaskscoutError, match="method must be"):
        taskscout.rank(target, pool=textemb_pool, method=42, progress=False)


def test_load_options_are_grouped_and_checked(textemb_pool, tmp_path):
    rows = make_task("t", n=40, seed=9)
    frame = pd.DataFrame({"words": rows.texts, "klass": [rows.label_names[i] for i in rows.labels]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    options = taskscout.LoadOptions(text_column="words", label_column="klass")
    as_object = taskscout.rank(
        tmp_path / "t.csv", pool=textemb_pool, method="textemb", load=options, progress=False
    )
    as_dict = taskscout.rank(
        tmp_path / "t.csv",
        pool=textemb_pool,
        method="textemb",
        load={"text_column": "words", "label_column": "klass"},
        progress=False,
    )
    assert as_object.scores() == as_dict.scores()
    with pytest.raises(DataError, match="unknown load option 'label'"):
        taskscout.rank(tmp_path / "t.csv", pool=textemb_pool, load={"label": "klass"}, progress=False)
    with pytest.raises(DataError, match="LoadOptions or a dict"):
        taskscout.rank(tmp_path / "t.csv", pool=textemb_pool, load=["klass"], progress=False)


def test_progress_false_prints_nothing(textemb_pool, capfd):
    import logging

    before = logging.getLogger("transformers").level
    taskscout.rank(make_task("target", n=40, seed=9), pool=textemb_pool, method="textemb", progress=False)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert logging.getLogger("transformers").level == before  # the user's settings are restored


def test_ranking_from_bad_json_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="not valid JSON"):
        taskscout.Ranking.from_json("{broken")
    with pytest.raises(DataError, match="lacks the field 'ranking'"):
        taskscout.Ranking.from_json(json.dumps({"target": "t", "method": "m", "model": "x", "pool": "p"}))
    with pytest.raises(DataError, match="cannot read ranking"):
        taskscout.Ranking.from_json(tmp_path / "missing.json")


def _readme_python() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert blocks, "README has a Python example"
    return textwrap.dedent(blocks[0])


@pytest.mark.integration
def test_readme_python_example_runs_twice(tmp_path, monkeypatch):
    """The README's example, verbatim, with the built-in pool and the real default encoder."""
    task = make_task("my_data", n=60, classes=3, seed=5)
    pd.DataFrame({"text": task.texts, "label": [task.label_names[i] for i in task.labels]}).to_csv(
        tmp_path / "my_data.csv", index=False
    )
    monkeypatch.chdir(tmp_path)
    code = compile(_readme_python(), str(README), "exec")
    for _ in range(2):
        namespace: dict = {}
        exec(code, namespace)
        ranking = namespace["ranking"]
        assert isinstance(ranking, taskscout.Ranking) and len(ranking) > 0
        assert np.isfinite(ranking.to_pandas()["score"]).all()
    assert taskscout.Ranking.from_json(tmp_path / "ranking.json").target == "my_data"


# ---------------------------------------------------------------------------------------------- plug-ins
PLUGIN = '''
from taskscout.methods.base import SelectionMethod


class Shortest(SelectionMethod):
    """Scores a source by minus its number of examples (smaller first)."""

    name = "shortest"
    description = "smaller sources first"
    needs_base_model = False

    def load_entry(self, entry, target, *, progress=False):
        return float(entry.meta["num_examples"])

    def score_group(self, target, reference, group, out):
        return {loaded.source: -loaded.data for loaded in group}
'''


def _install_plugin(root: Path, body: str, target: str, name: str = "shortest") -> None:
    """A package on sys.path with a dist-info that declares an entry point, as pip would install it."""
    (root / "fake_plugin.py").write_text(body)
    info = root / "fake_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[taskscout.methods]\n{name} = {target}\n")


def test_methods_from_entry_points_are_registered_and_rank(textemb_pool, tmp_path, monkeypatch):
    _install_plugin(tmp_path, PLUGIN, "fake_plugin:Shortest")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "fake_plugin", raising=False)
    assert "shortest" in taskscout.list_methods()
    ranking = taskscout.rank(
        make_task("target", n=40, seed=9), pool=textemb_pool, method="shortest", progress=False
    )
    assert ranking.method == "shortest" and set(ranking.scores()) == {"src_a", "src_b"}

    from typer.testing import CliRunner

    from taskscout.cli.main import app

    result = CliRunner().invoke(app, ["methods"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "shortest" in result.output


def test_broken_or_clashing_plugins_are_left_out_with_a_warning(tmp_path, monkeypatch):
    from taskscout.methods import plugin_problems

    clash = PLUGIN.replace('name = "shortest"', 'name = "textemb"')
    _install_plugin(tmp_path, clash, "fake_plugin:Shortest", name="textemb")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "fake_plugin", raising=False)
    with pytest.warns(UserWarning, match="name is taken by taskscout.methods.textemb"):
        methods = taskscout.list_methods()
    assert "textemb" in methods and "datasize" in methods
    with pytest.warns(UserWarning, match="left out"):
        assert taskscout.get_method("textemb").__module__ == "taskscout.methods.textemb"

    other = tmp_path / "other"
    other.mkdir()
    _install_plugin(other, "raise ImportError('missing dependency')\n", "fake_plugin:Nope", name="nope")
    monkeypatch.syspath_prepend(str(other))
    monkeypatch.delitem(__import__("sys").modules, "fake_plugin", raising=False)
    problems = plugin_problems()
    assert any("cannot load entry point 'nope'" in p and "missing dependency" in p for p in problems)
