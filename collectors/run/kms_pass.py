"""The KMS post-pass of a run: every KMS client's KMS name resolved to the machine it means, that machine's
stored state attached to the client's failure, and the client's count verdict.

A client may name its KMS host by FQDN, short name or IP address, pinned or discovered; ``models.kms``
resolves the name by ``models.hostfacts``' one identity rule and the answer is stored as the client's
``kms_host_id``, which the KMS hosts page counts by. The KMS host may have been polled later in the run, in
another shard or an earlier run, so the pass reads the database, not the run's results alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from collectors import diagnose
from collectors.probes import Probes
from models import hostfacts, kms, store
from models.enums import ProductType
from models.records import Finding, HostObservation


def apply_kms_pass(
    conn: Any, clients: Sequence[diagnose.KmsClient], now: datetime, probes: Probes | None = None
) -> int:
    """Resolve and judge every KMS client in the database; this run's own view of a client wins.

    A KMS name that matches no polled host is looked up through ``probes`` (cached, bounded) and matched
    by address. Returns the number of clients given findings.
    """
    judged = {c.host: c for c in stored_kms_clients(conn)}
    judged.update((c.host, c) for c in clients)
    if not judged:
        return 0
    # a short name is looked up as its client resolves it: with the client's own DNS domain
    lookup = {c.kms_host: hostfacts.qualified(c.kms_host, c.domain) for c in judged.values()}
    address_of = (lambda name: probes.address(lookup.get(name) or name)) if probes is not None else None
    resolved = kms.resolve_clients(conn, {host: c.kms_host for host, c in judged.items()}, address_of)
    store.set_kms_hosts(conn, {host: _id(record) for host, record in resolved.items()})
    findings: dict[str, list[Finding]] = {}
    for client in judged.values():
        record = resolved.get(client.host)
        found = [f for f in (diagnose.kms_count(client, record), diagnose.kms_host(client, record)) if f is not None]
        if found:
            findings[client.host] = found
    if findings:
        store.replace_findings(conn, findings, observed_at=now)
    return len(findings)


def _id(record: kms.KmsHostRecord | None) -> int | None:
    return record.id if record is not None else None


def stored_kms_clients(conn: Any) -> list[diagnose.KmsClient]:
    """KMS clients in the database with the KMS name they use (one narrow query)."""
    return [
        diagnose.KmsClient(
            row.host,
            row.kms_name,
            ProductType(row.product_type).is_server if row.product_type else None,
            row.error_code,
            row.os_version,
            row.os_caption,
            row.domain,
        )
        for row in kms.kms_clients(conn)
        if row.kms_name.strip()
    ]


def observed_client(result: HostObservation) -> diagnose.KmsClient | None:
    """This run's view of a KMS client, from what was just read."""
    facts = diagnose.HostFacts(
        result.host, result.domain, result.product_type, result.products, None, result.observed_at
    )
    return diagnose.kms_client(result.host, facts, result.os_version, result.os_caption)
