"""Both knowledge-base files follow one schema, so every consumer can rely on every key."""

from __future__ import annotations

import re

import pytest

from knowledge.codes import ACTIVATION_TYPES, CHECK_NAMES

LANGS = ("en", "zh-TW")
ALLOWED_TYPES = {"MAK", "KMS client", "KMS host"}
ALLOWED_CHECKS = {"kms_count", "clock_skew", "dns_srv", "kms_port", "grace_expiry", "event_log", "kms_host"}
TEXT_KEYS = ("title", "message")
LIST_KEYS = ("activation_types", "causes", "steps", "commands", "checks")
REQUIRED_KEYS = {"code", "anchor", "deep_link", *TEXT_KEYS, *LIST_KEYS}
OPTIONAL_KEYS = {"steps_by_type"}
CANONICAL = re.compile(r"0x[0-9A-F]{8}")
LOCALE = {"en": "/en-us/", "zh-TW": "/zh-tw/"}


def test_module_constants_match_the_shared_vocabulary():
    assert set(ACTIVATION_TYPES) == ALLOWED_TYPES
    assert set(CHECK_NAMES) == ALLOWED_CHECKS


@pytest.mark.parametrize("lang", LANGS)
def test_every_table_has_exactly_the_schema_keys(documents, lang):
    for name, table in documents[lang]["codes"].items():
        assert REQUIRED_KEYS <= set(table) <= REQUIRED_KEYS | OPTIONAL_KEYS, name
        assert table["code"] == name
        assert CANONICAL.fullmatch(name), name


@pytest.mark.parametrize("lang", LANGS)
def test_value_types_and_non_empty_texts(documents, lang):
    for name, table in documents[lang]["codes"].items():
        for key in TEXT_KEYS:
            assert isinstance(table[key], str) and table[key].strip(), (name, key)
        for key in LIST_KEYS:
            assert isinstance(table[key], list), (name, key)
            assert all(isinstance(item, str) and item.strip() for item in table[key]), (name, key)
        assert table["steps"], name
        assert table["causes"], name
        assert table["activation_types"], name


@pytest.mark.parametrize("lang", LANGS)
def test_per_type_steps_are_non_empty_lists_keyed_by_activation_type(documents, lang):
    order = list(ACTIVATION_TYPES)
    for name, table in documents[lang]["codes"].items():
        variants = table.get("steps_by_type", {})
        assert isinstance(variants, dict), name
        assert set(variants) <= ALLOWED_TYPES, name
        assert list(variants) == sorted(variants, key=order.index), f"{name}: keep MAK, KMS client, KMS host order"
        for kind, steps in variants.items():
            assert isinstance(steps, list) and steps, (name, kind)
            assert all(isinstance(step, str) and step.strip() for step in steps), (name, kind)
            assert steps != table["steps"], f"{name}: a {kind} variant equal to the default steps is redundant"


@pytest.mark.parametrize("lang", LANGS)
def test_activation_types_and_checks_come_from_the_allowed_sets(documents, lang):
    order = list(ACTIVATION_TYPES)
    for name, table in documents[lang]["codes"].items():
        types = table["activation_types"]
        assert set(types) <= ALLOWED_TYPES, name
        assert types == sorted(types, key=order.index), f"{name}: keep MAK, KMS client, KMS host order"
        assert set(table["checks"]) <= ALLOWED_CHECKS, name
        assert len(set(table["checks"])) == len(table["checks"]), name


@pytest.mark.parametrize("lang", LANGS)
def test_anchors_start_with_the_lower_case_code(documents, lang):
    for name, table in documents[lang]["codes"].items():
        if table["anchor"]:  # empty: link the page root
            assert table["anchor"].startswith(name.lower() + "-"), name
            assert re.fullmatch(r"[0-9a-z-]+", table["anchor"]), name


@pytest.mark.parametrize("lang", LANGS)
def test_deep_links_are_learn_pages_in_the_file_language(documents, lang):
    for name, table in documents[lang]["codes"].items():
        link = table["deep_link"]
        if link:
            assert link.startswith("https://learn.microsoft.com" + LOCALE[lang]), name
            assert "#" not in link, name


def all_steps(table: dict) -> list[str]:
    return [*table["steps"], *(step for steps in table.get("steps_by_type", {}).values() for step in steps)]


@pytest.mark.parametrize("lang", LANGS)
def test_every_listed_command_is_used_in_a_step(documents, lang):
    for name, table in documents[lang]["codes"].items():
        steps = "\n".join(all_steps(table))
        for command in table["commands"]:
            assert command in steps, (name, command)


@pytest.mark.parametrize("lang", LANGS)
def test_every_slmgr_command_in_a_step_is_listed(documents, lang):
    for name, table in documents[lang]["codes"].items():
        quoted = re.findall(r"`(slmgr\.vbs [^`]+)`", "\n".join(all_steps(table)))
        assert set(quoted) <= set(table["commands"]), name


@pytest.mark.parametrize("lang", LANGS)
def test_fallback_texts_exist(documents, lang):
    unknown = documents[lang]["unknown"]
    for key in ("title", "message", "informational", "unparseable"):
        assert "{code}" in unknown[key] or key == "title", key
    assert unknown["steps"]
