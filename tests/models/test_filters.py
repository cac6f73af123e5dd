"""``HostFilter``'s URL form, its allow-lists and its sentence."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from models.enums import ActivationType, FailureClass, LicenseStatus, ProductType
from models.filters import HostFilter


def test_url_round_trip() -> None:
    flt = HostFilter(
        error_codes=("0xC004F074",),
        activation_types=(ActivationType.KMS_CLIENT,),
        license_statuses=(LicenseStatus.NOTIFICATION,),
        sites=("Taipei",),
        os_captions=("Windows 11",),
        product_types=(ProductType.SERVER,),
        failure_classes=(FailureClass.AUTH,),
        stale_hours=6,
        search="ws-01",
        unactivated_only=True,
    )
    parsed, rejected = HostFilter.from_params(flt.to_params())
    assert parsed == flt and rejected == []


def test_pasted_code_forms_are_normalised() -> None:
    parsed, rejected = HostFilter.from_params({"code": ["c004f074", "-1073418124", "3221549112"]})
    assert parsed.error_codes == ("0xC004F074", "0xC004F038")
    assert rejected == []


def test_values_outside_the_allow_lists_are_rejected_not_applied() -> None:
    params = {"code": ["'; DROP TABLE hosts;--"], "type": ["Pirated"], "stale": ["-3"], "failure": ["boom"]}
    parsed, rejected = HostFilter.from_params(params)
    assert parsed == HostFilter()
    assert len(rejected) == 4


def test_sentence_in_both_languages() -> None:
    flt = HostFilter(error_codes=("0xC004F074",), activation_types=(ActivationType.KMS_CLIENT,), sites=("Taipei",))
    assert flt.describe(142) == "142 hosts · error 0xC004F074 · KMS client · site Taipei"
    assert flt.describe(142, lang="zh-TW").startswith("142 台主機 · 錯誤 0xC004F074")
    assert HostFilter().describe() == "all hosts"


@given(
    st.dictionaries(
        st.sampled_from(
            ["code", "type", "status", "site", "os", "product", "failure", "stale", "q", "unactivated", "x"]
        ),
        st.lists(st.text(max_size=300), max_size=3),
    )
)
def test_any_url_parses_without_raising(params: dict[str, list[str]]) -> None:
    parsed, _ = HostFilter.from_params(params)
    assert len(parsed.search) <= 200
