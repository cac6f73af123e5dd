"""Knowledge about Windows activation: the error-code knowledge base and the KMS rules.

``knowledge.codes`` owns canonical error codes and the bilingual (en / zh-TW) entries kept in
``knowledge/data``; ``knowledge.kms`` owns the KMS thresholds, caps, ports and timers. The package
depends on nothing else in the project, so every other package may import it. Nothing is loaded
at import time: the data files are read on first lookup.
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
)
from knowledge.kms import KmsState, capped, kms_state, required_count

__all__ = [
    "GENERAL_ARTICLE_URL",
    "LANGUAGES",
    "ErrorCode",
    "KmsState",
    "all_codes",
    "article_url",
    "capped",
    "is_failure",
    "kms_state",
    "lookup",
    "normalise",
    "required_count",
]
