"""Derives what a host's WMI data means: the activation type of each Windows product, its license
status and its error code, following the shared derivation rules (docs/collector.md). Pure
functions over ``parse`` records; probes and findings belong to ``diagnose``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta

from collectors.parse import LicensingProduct, LicensingService, SppEvent
from collectors.wmi import WINDOWS_APP_ID
from knowledge.kms import ACTIVATION_VALIDITY, INTERVAL_MAX, INTERVAL_MIN, RENEWAL_INTERVAL
from models.enums import ActivationType, LicenseStatus
from models.records import ProductState

SEVERITY_BIT = 0x80000000
ERROR_SOURCE_STATUS = "status"
ERROR_SOURCE_EVENT = "event"
KMS_RESPONSE_EVENT = 12289  # a KMS client processed its KMS host's answer; field 1 is the result
# A renewal counts as missed once the validity left is a day below what one missed interval leaves.
RENEWAL_MARGIN = timedelta(days=1)

_DESCRIPTION_CHANNELS = (
    ("VOLUME_KMSCLIENT", ActivationType.KMS_CLIENT),
    ("VOLUME_KMS", ActivationType.KMS_HOST),
    ("VOLUME_MAK", ActivationType.MAK),
    ("RETAIL", ActivationType.RETAIL),
    ("OEM_", ActivationType.OEM),
)


def format_code(value: int) -> str:
    """The canonical ``0xC004F074`` form of an HRESULT."""
    return f"0x{value & 0xFFFFFFFF:08X}"


def is_error(value: int | None) -> bool:
    """True for a failure HRESULT (severity bit set); ``0x4004....`` values are informational."""
    return value is not None and bool(value & SEVERITY_BIT)


def windows_products(products: Iterable[LicensingProduct]) -> tuple[LicensingProduct, ...]:
    """The Windows products with a key installed (the WQL filter, re-checked on our side)."""
    return tuple(
        p for p in products if p.partial_key and (p.application_id or WINDOWS_APP_ID).lower() == WINDOWS_APP_ID
    )


def activation_type(product: LicensingProduct, service: LicensingService | None) -> ActivationType:
    """The activation type from the product's key channel and description channel.

    ``SoftwareLicensingService.IsKeyManagementServiceMachine`` is machine-wide: a server with a
    Windows GVLK that hosts KMS for Office has it set. So the product's own data decides, and the
    service flag is used only when neither the key channel nor the description names a channel.
    """
    channel = (product.channel or "").strip()
    description = _description_channel(product.description)
    if channel.lower() == "volume:csvlk" or description is ActivationType.KMS_HOST or product.is_kms_machine:
        return ActivationType.KMS_HOST
    kind = _from_channel(channel, product) if channel else _from_description(description, product)
    if kind is ActivationType.UNKNOWN and description is None and service is not None and service.is_kms_machine:
        return ActivationType.KMS_HOST
    return kind


def _from_channel(channel: str, product: LicensingProduct) -> ActivationType:
    lowered = channel.lower()
    if lowered == "volume:gvlk":
        return ActivationType.AD_BASED if product.ad_activation_object else ActivationType.KMS_CLIENT
    if lowered == "volume:mak":
        return ActivationType.MAK
    if lowered == "retail":
        return ActivationType.RETAIL
    if lowered.startswith("oem:"):
        return ActivationType.OEM
    return ActivationType.UNKNOWN


def _from_description(description: ActivationType | None, product: LicensingProduct) -> ActivationType:
    if description is ActivationType.KMS_CLIENT and product.ad_activation_object:
        return ActivationType.AD_BASED
    return description or ActivationType.UNKNOWN


def _description_channel(description: str | None) -> ActivationType | None:
    text = (description or "").upper()
    for marker, kind in _DESCRIPTION_CHANNELS:
        if marker in text:
            return kind
    return None


def license_status(value: int | None) -> LicenseStatus:
    """``LicenseStatus`` 0-6; a missing or out-of-range value reads as ``Unlicensed``."""
    try:
        return LicenseStatus.from_wmi(value if value is not None else 0)
    except ValueError:
        return LicenseStatus.UNLICENSED


def error_code(
    product: LicensingProduct, status: LicenseStatus, events: Sequence[SppEvent]
) -> tuple[str | None, str | None]:
    """The product's error code and where it came from (``status`` or ``event``), or ``(None, None)``.

    A Licensed product has none, unless it is a KMS client whose renewals are failing: then the
    failure of its current renewal attempts is its code.
    """
    if is_error(product.license_status_reason):
        return format_code(product.license_status_reason or 0), ERROR_SOURCE_STATUS
    if status is LicenseStatus.LICENSED and not renewal_overdue(product):
        return None, None
    event = current_failure(events)
    if event is None or event.hresult is None:
        return None, None
    return format_code(event.hresult), ERROR_SOURCE_EVENT


def current_failure(events: Sequence[SppEvent]) -> SppEvent | None:
    """The newest failing SPP event, unless a later KMS response (12289) reported success.

    A failure that a later successful attempt superseded is history, not the host's current error.
    """
    for event in sorted(events, key=_event_order, reverse=True):
        if is_error(event.hresult):
            return event
        if event.event_code == KMS_RESPONSE_EVENT and event.hresult is not None:
            return None
    return None


def _event_order(event: SppEvent) -> tuple[bool, object, int]:
    return event.time_generated is not None, event.time_generated, event.record_number


def renewal_threshold(product: LicensingProduct) -> timedelta:
    """The validity a KMS client has left once it missed a renewal: 180 days less its interval, less a margin."""
    minutes = product.renewal_interval_minutes
    interval = timedelta(minutes=minutes) if minutes else RENEWAL_INTERVAL
    if not INTERVAL_MIN <= interval <= INTERVAL_MAX:
        interval = RENEWAL_INTERVAL
    return ACTIVATION_VALIDITY - interval - RENEWAL_MARGIN


def renewal_overdue(product: LicensingProduct) -> bool:
    """Whether a Licensed KMS client's validity shows missed renewals (a healthy one stays above 172 days)."""
    if license_status(product.license_status) is not LicenseStatus.LICENSED or product.grace_minutes is None:
        return False
    if activation_type(product, None) is not ActivationType.KMS_CLIENT or product.grace_minutes <= 0:
        return False
    return timedelta(minutes=product.grace_minutes) < renewal_threshold(product)


def needs_events(products: Sequence[LicensingProduct], *, renewals: bool = True) -> bool:
    """Whether an error code can only come from the SPP event log (also when no key is installed).

    Besides products that are not licensed, a licensed KMS client whose renewals are overdue needs
    them (unless ``renewals`` is false): its failing renewals show there and nowhere else.
    """
    return not products or any(
        (license_status(p.license_status) is not LicenseStatus.LICENSED or (renewals and renewal_overdue(p)))
        and not is_error(p.license_status_reason)
        for p in products
    )


def product_state(
    product: LicensingProduct, service: LicensingService | None, events: Sequence[SppEvent]
) -> ProductState:
    """Classify one Windows product."""
    status = license_status(product.license_status)
    code, source = error_code(product, status, events)
    kind = activation_type(product, service)
    return ProductState(
        renewal_failing=status is LicenseStatus.LICENSED and code is not None and kind is ActivationType.KMS_CLIENT,
        product_id=product.id,
        activation_type=kind,
        license_status=status,
        name=product.name,
        description=product.description,
        channel=product.channel,
        error_code=code,
        error_source=source,
        grace_minutes=product.grace_minutes,
        partial_key=product.partial_key,
        kms_machine=product.kms_machine or (service.kms_machine if service else None),
        kms_port=product.kms_port or (service.kms_port if service else None),
        discovered_kms_machine=product.discovered_kms_machine or (service.discovered_kms_machine if service else None),
        discovered_kms_port=product.discovered_kms_port or (service.discovered_kms_port if service else None),
    )


def no_key_state(events: Sequence[SppEvent]) -> ProductState:
    """The state of a host with no Windows key installed: ``unknown``, ``Unlicensed``, its current failure."""
    event = current_failure(events)
    code = format_code(event.hresult) if event is not None and event.hresult is not None else None
    return ProductState(
        product_id="",
        activation_type=ActivationType.UNKNOWN,
        license_status=LicenseStatus.UNLICENSED,
        error_code=code,
        error_source=ERROR_SOURCE_EVENT if code else None,
    )


def product_states(
    products: Sequence[LicensingProduct], service: LicensingService | None, events: Sequence[SppEvent]
) -> tuple[ProductState, ...]:
    """Every Windows product classified; a host without a key gets one ``no_key_state``."""
    if not products:
        return (no_key_state(events),)
    return tuple(product_state(p, service, events) for p in products)
