"""OIDs of the NuGet signature profile and the asn1crypto types asn1crypto does not ship.

Importing this module registers the extra CMS attribute types (commitment-type-indication and the
two NuGet repository attributes) so `SignerInfo['signed_attrs']` parses them by name. Every module
that parses or builds signatures imports it; registration is idempotent.
"""

from __future__ import annotations

from asn1crypto import algos, cms, core, tsp  # tsp registers signing-certificate (v1, v2)

# Hash algorithms NuGet accepts everywhere: name (as hashlib spells it) <-> OID.
HASH_OIDS: dict[str, str] = {
    "sha256": "2.16.840.1.101.3.4.2.1",
    "sha384": "2.16.840.1.101.3.4.2.2",
    "sha512": "2.16.840.1.101.3.4.2.3",
}
HASH_NAMES: dict[str, str] = {oid: name for name, oid in HASH_OIDS.items()}
SHA1_OID = "1.3.14.3.2.26"

# RSA signature algorithms of certificates NuGet accepts (NU3013 / NU3022 otherwise).
RSA_SIGNATURE_OIDS = frozenset(
    {"1.2.840.113549.1.1.11", "1.2.840.113549.1.1.12", "1.2.840.113549.1.1.13"}
)
RSA_ENCRYPTION_OID = "1.2.840.113549.1.1.1"

ID_DATA = "1.2.840.113549.1.7.1"
ID_SIGNED_DATA = "1.2.840.113549.1.7.2"
ID_CT_TSTINFO = "1.2.840.113549.1.9.16.1.4"

ATTR_CONTENT_TYPE = "1.2.840.113549.1.9.3"
ATTR_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
ATTR_SIGNING_TIME = "1.2.840.113549.1.9.5"
ATTR_COUNTERSIGNATURE = "1.2.840.113549.1.9.6"
ATTR_SIGNING_CERTIFICATE = "1.2.840.113549.1.9.16.2.12"
ATTR_TIMESTAMP_TOKEN = "1.2.840.113549.1.9.16.2.14"
ATTR_COMMITMENT_TYPE = "1.2.840.113549.1.9.16.2.16"
ATTR_SIGNING_CERTIFICATE_V2 = "1.2.840.113549.1.9.16.2.47"
ATTR_NUGET_SERVICE_INDEX = "1.3.6.1.4.1.311.84.2.1.1.1"
ATTR_NUGET_OWNERS = "1.3.6.1.4.1.311.84.2.1.1.2"

COMMITMENT_AUTHOR = "1.2.840.113549.1.9.16.6.1"  # id-cti-ets-proofOfOrigin
COMMITMENT_REPOSITORY = "1.2.840.113549.1.9.16.6.2"  # id-cti-ets-proofOfReceipt

EKU_CODE_SIGNING = "1.3.6.1.5.5.7.3.3"
EKU_TIME_STAMPING = "1.3.6.1.5.5.7.3.8"
EKU_LIFETIME_SIGNING = "1.3.6.1.4.1.311.10.3.13"
ETSI_BASELINE_TSA_POLICY = "0.4.0.2023.1.1"


class CommitmentTypeQualifier(core.Sequence):
    _fields = [("commitment_type_identifier", core.ObjectIdentifier), ("qualifier", core.Any)]


class CommitmentTypeQualifiers(core.SequenceOf):
    _child_spec = CommitmentTypeQualifier


class CommitmentTypeIndication(core.Sequence):
    _fields = [
        ("commitment_type_id", core.ObjectIdentifier),
        ("commitment_type_qualifier", CommitmentTypeQualifiers, {"optional": True}),
    ]


class SetOfCommitmentTypeIndication(core.SetOf):
    _child_spec = CommitmentTypeIndication


class NuGetPackageOwners(core.SequenceOf):
    _child_spec = core.UTF8String


class SetOfNuGetPackageOwners(core.SetOf):
    _child_spec = NuGetPackageOwners


class SetOfIA5String(core.SetOf):
    _child_spec = core.IA5String


def _register() -> None:
    names = {
        ATTR_COMMITMENT_TYPE: ("commitment_type_indication", SetOfCommitmentTypeIndication),
        ATTR_NUGET_SERVICE_INDEX: ("nuget_v3_service_index_url", SetOfIA5String),
        ATTR_NUGET_OWNERS: ("nuget_package_owners", SetOfNuGetPackageOwners),
    }
    for oid, (name, spec) in names.items():
        cms.CMSAttributeType._map[oid] = name
        cms.CMSAttributeType._reverse_map = None  # rebuilt lazily by asn1crypto
        cms.CMSAttribute._oid_specs[name] = spec


_register()

__all__ = [name for name in dir() if name.isupper()] + [
    "CommitmentTypeIndication",
    "NuGetPackageOwners",
    "algos",
    "tsp",
]
