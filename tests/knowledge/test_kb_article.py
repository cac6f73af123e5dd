"""The knowledge base covers exactly the codes of Microsoft's article, in both languages, in our words."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"
ARTICLE_TYPES = {"MAK": "MAK", "KMS 用戶端": "KMS client", "KMS 主機": "KMS host", "KMS": "KMS host"}
SUMMARY_ROW = re.compile(r"^\|\[(0x[0-9A-Fa-f]{8})\]\(#[^)]*\)\s*\|[^|]*\|([^|]*)\|", re.MULTILINE)
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
MIN_CJK_IN_SENTENCE = 6


def article_summary(article_text: str) -> dict[str, set[str]]:
    """Code -> activation types, read from the article's summary table."""
    rows = {}
    for code, types in SUMMARY_ROW.findall(article_text):
        labels = {label.strip() for label in types.split("<br />") if label.strip()}
        rows[f"0x{code[2:].upper()}"] = {ARTICLE_TYPES[label] for label in labels}
    return rows


def texts_of(table: dict) -> list[str]:
    variants = [step for steps in table.get("steps_by_type", {}).values() for step in steps]
    return [table["title"], table["message"], *table["causes"], *table["steps"], *variants]


def plain(text: str) -> str:
    text = re.sub(r"<a name=\"[^\"]*\"></a>", "", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[*`>#|]|&nbsp;|<br />|</li>", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def article_sentences(article_text: str) -> list[str]:
    body = article_text.split("---", 2)[-1]
    pieces = re.split(r"[。\n]", body)
    sentences = {plain(piece) for piece in pieces}
    return sorted(s for s in sentences if len(CJK.findall(s)) >= MIN_CJK_IN_SENTENCE)


def test_article_table_has_thirty_codes(article_text):
    assert len(article_summary(article_text)) == 30


@pytest.mark.parametrize("lang", ["en", "zh-TW"])
def test_each_language_covers_exactly_the_article_codes(documents, article_text, lang):
    assert set(documents[lang]["codes"]) == set(article_summary(article_text))


@pytest.mark.parametrize("lang", ["en", "zh-TW"])
def test_activation_types_follow_the_article_table(documents, article_text, lang):
    expected = article_summary(article_text)
    for code, table in documents[lang]["codes"].items():
        assert set(table["activation_types"]) == expected[code], code


def test_languages_agree_on_everything_but_words_and_anchors(documents):
    en, zh = documents["en"]["codes"], documents["zh-TW"]["codes"]
    assert list(en) == list(zh)
    for code in en:
        for key in ("code", "activation_types", "checks", "commands"):
            assert en[code][key] == zh[code][key], (code, key)
        assert len(en[code]["steps"]) == len(zh[code]["steps"]), code
        assert en[code]["deep_link"].replace("/en-us/", "/zh-tw/") == zh[code]["deep_link"], code


def test_languages_have_the_same_per_type_steps(documents):
    en, zh = documents["en"]["codes"], documents["zh-TW"]["codes"]
    for code in en:
        en_variants, zh_variants = en[code].get("steps_by_type", {}), zh[code].get("steps_by_type", {})
        assert list(en_variants) == list(zh_variants), code
        for kind, steps in en_variants.items():
            assert len(steps) == len(zh_variants[kind]), (code, kind)


def test_zh_tw_text_is_chinese(documents):
    for code, table in documents["zh-TW"]["codes"].items():
        for text in texts_of(table):
            assert CJK.search(text), (code, text)
    assert all(CJK.search(step) for step in documents["zh-TW"]["unknown"]["steps"])


def test_english_text_has_no_chinese(documents):
    for code, table in documents["en"]["codes"].items():
        for text in texts_of(table):
            assert not CJK.search(text), (code, text)


def test_zh_tw_uses_traditional_characters(documents):
    simplified = set("这个们说时没设启动码错误应软网络连为务开关请户与认证态统据库检测读写")
    for code, table in documents["zh-TW"]["codes"].items():
        found = simplified & set("".join(texts_of(table)))
        assert not found, (code, found)


def test_no_article_sentence_is_copied(documents, article_text):
    ours = plain(" ".join(text for table in documents["zh-TW"]["codes"].values() for text in texts_of(table)))
    sentences = article_sentences(article_text)
    assert len(sentences) > 100
    copied = [sentence for sentence in sentences if sentence in ours]
    assert not copied


def learn_anchor(heading: str) -> str:
    """The fragment learn.microsoft.com derives from a section heading."""
    text = re.sub(r"[^0-9a-z\s-]", "", heading.lower().replace("'", ""))
    return re.sub(r"\s+", "-", text.strip())


def canonical_code(text: str) -> str:
    return "0x" + text[2:10].upper()


def english_anchors() -> dict[str, str]:
    """Code -> anchor of the 2025 English article, derived from its saved section headings."""
    headings = (DATA / "article-headings-2025.en.txt").read_text(encoding="utf-8").splitlines()
    return {canonical_code(heading): learn_anchor(heading) for heading in headings}


def zh_tw_anchors() -> dict[str, str]:
    """Code -> ``<a name>`` anchor of the zh-TW article, from its saved heading list."""
    lines = (DATA / "article-anchors-2019.zh-TW.txt").read_text(encoding="utf-8").splitlines()
    return {canonical_code(line): line.split()[0] for line in lines}


SAVED_ANCHORS = {"en": english_anchors, "zh-TW": zh_tw_anchors}


@pytest.mark.parametrize("lang", ["en", "zh-TW"])
def test_every_anchor_is_one_the_article_in_that_language_has(documents, lang):
    saved = SAVED_ANCHORS[lang]()
    assert len(saved) == 30
    for code, table in documents[lang]["codes"].items():
        # An empty anchor links the page root: the fallback for a section that cannot be confirmed.
        assert table["anchor"] in {saved[code], ""}, (lang, code)


def test_the_saved_zh_tw_anchors_are_those_of_the_source_article(article_text):
    in_article = re.findall(r'^### <a name="(0x[0-9a-f]{8}-[^"]*)"></a>', article_text, re.MULTILINE)
    assert sorted(in_article) == sorted(zh_tw_anchors().values())


def test_the_zh_tw_anchors_differ_from_the_english_ones_where_the_wording_did():
    english, chinese = english_anchors(), zh_tw_anchors()
    differing = {code for code in english if english[code] != chinese[code]}
    assert len(differing) == 15
    assert "0xC004F042" in differing and "0xC004F074" not in differing
