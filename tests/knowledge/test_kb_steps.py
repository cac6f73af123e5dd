"""Resolution steps that depend on how the host activates: per-type variants and the default."""

from __future__ import annotations

import pytest

from knowledge import all_codes, lookup, resolution_steps
from knowledge.codes import ACTIVATION_TYPES

VARIANTS = {
    "0xC004C008": ("MAK",),
    "0xC004F009": ("MAK", "KMS client", "KMS host"),
    "0xC004F00F": ("MAK", "KMS client", "KMS host"),
    "0xC004F014": ("MAK", "KMS client"),
    "0xC004F050": ("KMS client", "KMS host"),
    "0xC004F051": ("MAK", "KMS host"),
}


def joined(steps: tuple[str, ...]) -> str:
    return "\n".join(steps)


@pytest.mark.parametrize("lang", ["en", "zh-TW"])
def test_exactly_these_codes_have_variants(lang):
    found = {entry.code: tuple(kind for kind, _ in entry.steps_by_type) for entry in all_codes(lang)}
    assert {code: kinds for code, kinds in found.items() if kinds} == VARIANTS


@pytest.mark.parametrize("lang", ["en", "zh-TW"])
def test_a_kms_client_out_of_grace_is_not_told_to_install_a_key(lang):
    steps = joined(resolution_steps("0xC004F009", "KMS client", lang))
    assert "/ipk" not in steps
    assert "slmgr.vbs /ato" in steps
    assert "slmgr.vbs /skms <kms_host>:<port>" in steps
    assert "Test-NetConnection <kms_host> -Port 1688" in steps


@pytest.mark.parametrize("lang", ["en", "zh-TW"])
def test_a_mak_host_out_of_grace_activates_with_its_mak(lang):
    steps = joined(resolution_steps("0xC004F009", "MAK", lang))
    assert "slmgr.vbs /ato" in steps and "slmgr.vbs /ipk <product_key>" in steps
    assert "slmgr.vbs /atp <confirmation_id>" in steps


@pytest.mark.parametrize("lang", ["en", "zh-TW"])
def test_a_kms_host_out_of_grace_activates_its_host_key(lang):
    steps = joined(resolution_steps("0xC004F009", "KMS host", lang))
    assert "CSVLK" in steps and "0xC004F041" in steps
    assert "/skms" not in steps


@pytest.mark.parametrize("lang", ["en", "zh-TW"])
def test_the_default_grace_steps_install_no_key(lang):
    """Shown when the activation type is unknown, so they must suit a KMS client too."""
    steps = joined(resolution_steps("0xC004F009", None, lang))
    assert "/ipk" not in steps and "slmgr.vbs /ato" in steps


@pytest.mark.parametrize("kind", ["Retail", "OEM", "AD-based", "unknown", "", None, "KMS"])
def test_types_without_a_variant_get_the_default(kind):
    assert resolution_steps("0xC004F009", kind) == lookup("0xC004F009").steps


def test_activation_type_is_matched_without_regard_to_case_or_spaces():
    assert resolution_steps("0xC004F009", " kms CLIENT ") == resolution_steps("0xC004F009", "KMS client")
    assert resolution_steps("0xC004F009", "KMS client") != lookup("0xC004F009").steps


def test_a_mak_refused_with_0xc004c008_is_sent_for_a_new_mak_or_a_reset():
    mak = joined(resolution_steps("0xC004C008", "MAK"))
    assert "MAK" in mak and "slmgr.vbs /ipk <product_key>" in mak
    assert resolution_steps("0xC004C008", "KMS host") == lookup("0xC004C008").steps


@pytest.mark.parametrize("lang", ["en", "zh-TW"])
def test_hardware_change_steps_follow_the_article_per_type(lang):
    assert "slmgr.vbs /atp <confirmation_id>" in joined(resolution_steps("0xC004F00F", "MAK", lang))
    client = joined(resolution_steps("0xC004F00F", "KMS client", lang))
    assert "slmgr.vbs /ato" in client and "/atp" not in client


@pytest.mark.parametrize("lang", ["en", "zh-TW"])
def test_missing_key_steps_name_the_right_key(lang):
    assert "GVLK" in joined(resolution_steps("0xC004F014", "KMS client", lang))
    assert "GVLK" not in joined(resolution_steps("0xC004F014", "MAK", lang))


def test_variants_are_in_the_activation_type_order():
    for code, kinds in VARIANTS.items():
        listed = [kind for kind, _ in lookup(code).steps_by_type]
        assert listed == [kind for kind in ACTIVATION_TYPES if kind in kinds], code


def test_codes_without_variants_give_their_steps_for_every_type():
    entry = lookup("0xC004F074")
    assert all(entry.steps_for(kind) == entry.steps for kind in (*ACTIVATION_TYPES, None))


def test_unknown_and_unreadable_codes_give_the_fallback_steps():
    assert resolution_steps("0xC004FFFF", "KMS client") == lookup("0xC004FFFF").steps
    assert resolution_steps("not a code", "MAK", "zh-TW") == lookup("not a code", "zh-TW").steps
