"""Knowledge about Windows activation: the error-code knowledge base and the KMS rules.

``knowledge.codes`` owns canonical error codes and the bilingual (en / zh-TW) entries kept in
``knowledge/data``, with resolution steps per activation type; ``knowledge.kms`` owns the KMS
thresholds, caps, ports and timers, and which KMS host versions activate which Windows versions;
``knowledge.findings`` puts diagnosis findings into words per language (summaries and evidence labels).
The package depends on nothing else in the project, so every other package may import it. Nothing
is loaded at import time: the data files are read on first lookup.
"""

from __future__ import annotations

from knowledge.codes import (
    GENERAL_ARTICLE_URL,
    LANGUAGES,
    ErrorCode,
    all_codes,
    article_url,
    is_failure,
    lookup,
    normalise,
    normalise_language,
    resolution_steps,
)
from knowledge.findings import evidence_pairs, in_words
from knowledge.kms import (
    HostCount,
    KmsState,
    at_cap,
    can_activate,
    capped,
    count_ceiling,
    host_count,
    kms_state,
    required_count,
    windows_name,
)

__all__ = [
    "GENERAL_ARTICLE_URL",
    "LANGUAGES",
    "ErrorCode",
    "HostCount",
    "KmsState",
    "all_codes",
    "article_url",
    "at_cap",
    "can_activate",
    "capped",
    "count_ceiling",
    "evidence_pairs",
    "host_count",
    "in_words",
    "is_failure",
    "kms_state",
    "lookup",
    "normalise",
    "normalise_language",
    "required_count",
    "resolution_steps",
    "windows_name",
]
