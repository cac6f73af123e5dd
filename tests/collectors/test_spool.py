from __future__ import annotations

from datetime import UTC, datetime

import pytest

from collectors.errors import SpoolError
from collectors.spool import Spool, SpooledBatch, decode_result, encode_result
from models.enums import ActivationType, FailureClass, LicenseStatus, ProductType, Severity
from models.records import Finding, HostFailure, HostObservation, KmsHostCounters, ProductState

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
OBSERVATION = HostObservation(
    host="ws01",
    observed_at=NOW,
    computer_name="WS01",
    domain="corp.test",
    product_type=ProductType.WORKSTATION,
    clock_skew_seconds=-1.5,
    products=(ProductState("p", ActivationType.KMS_CLIENT, LicenseStatus.OOB_GRACE, error_code="0xC004F074"),),
    kms=KmsHostCounters(current_count=3, listening=False),
    findings=(Finding("kms_port", Severity.FAIL, "closed", "0xC004F074", {"port": 1688, "ok": False}),),
)
FAILURE = HostFailure("ws02", NOW, FailureClass.TIMEOUT, "host deadline of 5s exceeded")


def test_results_survive_encoding():
    assert decode_result(encode_result(OBSERVATION)) == OBSERVATION
    assert decode_result(encode_result(FAILURE)) == FAILURE


def test_spool_keeps_batches_in_order_until_removed(tmp_path):
    spool = Spool(tmp_path / "spool")
    spool.write(SpooledBatch("b1", 7, (OBSERVATION,)))
    spool.write(SpooledBatch("b2", None, (FAILURE,)))
    batches = list(spool.pending())
    assert [(b.batch_id, b.run_id, b.results) for b in batches] == [("b1", 7, (OBSERVATION,)), ("b2", None, (FAILURE,))]
    Spool.remove(batches[0])
    assert [b.batch_id for b in spool.pending()] == ["b2"]


def test_unwritable_spool_is_a_spool_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SpoolError, match="cannot write spool"):
        Spool(blocker / "spool").write(SpooledBatch("b", None, (FAILURE,)))
