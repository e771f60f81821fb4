"""Builders and session fixtures shared by the verify tests (no tests in this module).

Everything is real: certificates from trustpolicy.testing.pki, signatures from trustpolicy._internal.sign,
timestamps from TimestampServer on 127.0.0.1, CRLs from CRLServer. Where a test needs a signature
NuGet's signer would refuse to write (short key, two SignerInfos, a bad timestamp...), the pieces
are assembled here with asn1crypto from the same building blocks.
"""

from __future__ import annotations

import hashlib
import itertools
import shutil
import struct
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms, core, tsp
from conftest import identity_of, make_package, make_verifier  # shared with the other suites

from trustpolicy._internal import clock
from trustpolicy._internal.archive import PackageArchive, hash_file, insert_signature, strip_signature
from trustpolicy._internal.chain import ChainValidator
from trustpolicy._internal.revocation import RevocationOptions
from trustpolicy._internal.sign import (
    RepositoryOptions,
    attribute,
    build_signature,
    countersign_signature,
    der_set_of,
    make_signer_info,
    sign_package,
    signature_content,
    signing_certificate_v1,
    signing_certificate_v2,
    signing_time_value,
)
from trustpolicy._internal.truststore import TrustStore
from trustpolicy._internal.verify import VerificationSettings, Verifier
from trustpolicy.testing.pki import Issued, TestPKI
from trustpolicy.testing.revocation import CRLServer, closed_port_url
from trustpolicy.testing.tsa import TimestampServer

SERVICE_INDEX = "https://api.test.example/v3/index.json"
_names = itertools.count(1)


# --- packages ------------------------------------------------------------------------------------


def read_signature(path: Path) -> bytes:
    return PackageArchive.open(path).read_signature()


def replace_signature(package: Path, der: bytes, dest: Path) -> Path:
    """`package` with its signature replaced by `der` (the content hash is left as it is)."""
    bare = dest.with_suffix(".unsigned.tmp")
    strip_signature(package, bare)
    insert_signature(bare, der, dest)
    bare.unlink()
    return dest


def patch(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def flip_byte(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))


def entry(path: Path, name: bytes):  # type: ignore[no-untyped-def]
    return next(e for e in PackageArchive.open(path).entries if e.name == name)


def first_data_offset(path: Path, name: bytes) -> int:
    """Offset of the first data byte of entry `name` (after its local header)."""
    e = entry(path, name)
    raw = path.read_bytes()
    name_len, extra_len = struct.unpack_from("<HH", raw, e.lfh_offset + 26)
    return e.lfh_offset + 30 + name_len + extra_len


# --- CMS surgery ---------------------------------------------------------------------------------


def _present(value: Any) -> bool:
    return value is not None and not isinstance(value, core.Void) and value.native is not None


def _fields(value: core.Sequence, *skip: str) -> dict[str, Any]:
    return {name: value[name] for name, *_ in value._fields if name not in skip and not isinstance(value[name], core.Void)}


def with_signer_info(der: bytes, info: cms.SignerInfo, *, extra_certs: Sequence[Any] = ()) -> bytes:
    """The .signature.p7s `der` with its primary SignerInfo replaced (and certificates added)."""
    content = cms.ContentInfo.load(der)
    signed_data = content["content"]
    fields = _fields(signed_data, "signer_infos", "certificates")
    certs = [c.dump() for c in signed_data["certificates"]] if _present(signed_data["certificates"]) else []
    certs += [c.dump() if hasattr(c, "dump") else c for c in extra_certs]
    fields["certificates"] = cms.CertificateSet.load(der_set_of(dict.fromkeys(certs)))
    fields["signer_infos"] = cms.SignerInfos([info])
    return cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(fields)}).dump()


def primary_info(der: bytes) -> cms.SignerInfo:
    return cms.ContentInfo.load(der)["content"]["signer_infos"][0]


def add_unsigned(info: cms.SignerInfo, attrs: Sequence[bytes]) -> cms.SignerInfo:
    """A copy of `info` with unsigned attributes appended; everything signed keeps its bytes."""
    existing = [a.dump() for a in info["unsigned_attrs"]] if _present(info["unsigned_attrs"]) else []
    fields = _fields(info, "unsigned_attrs")
    fields["unsigned_attrs"] = cms.CMSAttributes.load(der_set_of([*existing, *attrs]))
    return cms.SignerInfo(fields)


def replace_unsigned(info: cms.SignerInfo, attrs: Sequence[bytes]) -> cms.SignerInfo:
    fields = _fields(info, "unsigned_attrs")
    if attrs:
        fields["unsigned_attrs"] = cms.CMSAttributes.load(der_set_of(attrs))
    return cms.SignerInfo(fields)


def with_bad_signature(info: cms.SignerInfo) -> cms.SignerInfo:
    """The same SignerInfo with one bit of its signature value flipped."""
    fields = _fields(info, "signature")
    value = bytearray(info["signature"].native)
    value[-1] ^= 0x01
    fields["signature"] = bytes(value)
    return cms.SignerInfo(fields)


def countersignature_of(info: cms.SignerInfo) -> cms.SignerInfo:
    for attr in info["unsigned_attrs"]:
        if attr["type"].native == "counter_signature":
            return attr["values"][0]
    raise AssertionError("no countersignature")


def map_countersignature(der: bytes, change: Callable[[cms.SignerInfo], cms.SignerInfo]) -> bytes:
    """The .signature.p7s with its repository countersignature replaced by change(countersignature)."""
    info = primary_info(der)
    attrs = []
    for attr in info["unsigned_attrs"]:
        if attr["type"].native == "counter_signature":
            attrs.append(attribute("counter_signature", change(attr["values"][0])))
        else:
            attrs.append(attr.dump())
    return with_signer_info(der, replace_unsigned(info, attrs))


def author_attributes(cert: Any, content: bytes, hash_algorithm: str = "sha256", *,
                      moment: datetime | None = None, commitment: str | None = "1.2.840.113549.1.9.16.6.1",
                      signing_certificate: str = "v2", signing_time: bool = True) -> list[bytes]:
    """The signed attributes NuGet's author signature carries, with knobs to break them."""
    attrs = [
        attribute("content_type", "data"),
        attribute("message_digest", hashlib.new(hash_algorithm, content).digest()),
    ]
    if signing_time:
        attrs.append(attribute("signing_time", signing_time_value(moment or clock.now())))
    if commitment:
        attrs.append(attribute("commitment_type_indication", {"commitment_type_id": commitment}))
    if signing_certificate in ("v2", "both"):
        attrs.append(attribute("signing_certificate_v2", signing_certificate_v2(cert, hash_algorithm)))
    if signing_certificate in ("v1", "both"):
        attrs.append(attribute("signing_certificate", signing_certificate_v1(cert)))
    return attrs


def assemble(content: bytes, infos: Sequence[cms.SignerInfo], certs: Sequence[Any], hash_algorithm: str = "sha256") -> bytes:
    """A SignedData .signature.p7s from SignerInfos and cryptography certificates."""
    from cryptography.hazmat.primitives import serialization

    ders = [c.public_bytes(serialization.Encoding.DER) for c in certs]
    signed_data = cms.SignedData({
        "version": "v3",
        "digest_algorithms": [{"algorithm": hash_algorithm}],
        "encap_content_info": {"content_type": "data", "content": content},
        "certificates": cms.CertificateSet.load(der_set_of(dict.fromkeys(ders))),
        "signer_infos": list(infos),
    })
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


def raw_token(server: TimestampServer, data: bytes, hash_algorithm: str = "sha256") -> cms.ContentInfo:
    """Ask a real timestamp server over HTTP for a token on `data`, WITHOUT the client's checks
    (so tests can embed tokens NuGet's signer would refuse)."""
    request = tsp.TimeStampReq({
        "version": "v1",
        "message_imprint": {"hash_algorithm": {"algorithm": hash_algorithm},
                            "hashed_message": hashlib.new(hash_algorithm, data).digest()},
        "nonce": 12345,
        "cert_req": True,
    })
    http = urllib.request.Request(server.url, data=request.dump(), method="POST",
                                  headers={"Content-Type": "application/timestamp-query"})
    with urllib.request.urlopen(http, timeout=10) as answer:
        response = tsp.TimeStampResp.load(answer.read())
    return cms.ContentInfo.load(response["time_stamp_token"].dump())


def timestamp_attribute(*tokens: cms.ContentInfo) -> bytes:
    return cms.CMSAttribute({"type": "signature_time_stamp_token", "values": list(tokens)}).dump()


# --- the session world ---------------------------------------------------------------------------


@dataclass
class World:
    """The session's PKIs, servers, trust store and chain validators, plus package builders."""

    pki: TestPKI  # trusted: root -> intermediate -> leaf; tsa_root -> tsa
    other: TestPKI  # untrusted roots
    directory: Path
    tsa: TimestampServer
    crls: CRLServer
    store: TrustStore
    chains: ChainValidator  # revocation off
    online: ChainValidator  # revocation online (127.0.0.1 only)
    offline: ChainValidator
    revocable: Issued  # code signing, directly under pki.root, CRL says good
    revoked: Issued  # code signing, directly under pki.root, revoked by the root's CRL
    revoked_tsa: Issued  # timestamping, under pki.tsa_root, revoked
    unreachable: Issued  # code signing whose CRL distribution point refuses connections
    unreachable_tsa: Issued
    revoked_tsa_later: Issued  # timestamping, revoked one day after the session started

    def path(self, stem: str = "pkg") -> Path:
        return self.directory / f"{stem}-{next(_names)}.nupkg"

    def unsigned(self, stem: str = "unsigned", **kw: Any) -> Path:
        return make_package(self.path(stem), **kw)

    def sign(self, signer: Issued | None = None, *, timestamp: TimestampServer | bool = True,
             repository: RepositoryOptions | None = None, package: Path | None = None,
             stem: str = "signed", **options: Any) -> Path:
        """sign_package with a test certificate (default: the trusted leaf) and timestamp server."""
        signer = signer or self.pki.leaf
        server = self.tsa if timestamp is True else (timestamp or None)
        source = package or self.unsigned(stem + "-unsigned")
        return sign_package(source, identity=identity_of(signer), output=self.path(stem),
                            timestamper=server.url if server else None, repository=repository,
                            on_warning=lambda w: None, **options)

    def countersign(self, package: Path, signer: Issued | None = None, *, timestamp: TimestampServer | bool = True,
                    owners: Sequence[str] = (), stem: str = "countersigned", **options: Any) -> Path:
        signer = signer or self.repository_leaf
        server = self.tsa if timestamp is True else (timestamp or None)
        return sign_package(package, identity=identity_of(signer), output=self.path(stem),
                            timestamper=server.url if server else None,
                            repository=RepositoryOptions(SERVICE_INDEX, tuple(owners)), on_warning=lambda w: None,
                            **options)

    def forge(self, signer: Issued, *, stem: str = "forged", timestamp: TimestampServer | None = None,
              signing_time: datetime | None = None, hash_algorithm: str = "sha256",
              repository: RepositoryOptions | None = None, content: bytes | None = None,
              package: Path | None = None) -> Path:
        """build_signature directly: no sign-time certificate checks (for certificates NuGet refuses)."""
        source = package or self.unsigned(stem + "-unsigned")
        content = content or signature_content(hash_algorithm, hash_file(source, hash_algorithm))
        der = build_signature(content, identity=identity_of(signer), hash_algorithm=hash_algorithm,
                              repository=repository, signing_time=signing_time)
        if timestamp is not None:
            info = primary_info(der)
            der = with_signer_info(der, add_unsigned(info, [timestamp_attribute(raw_token(timestamp, info["signature"].native))]))
        dest = self.path(stem)
        insert_signature(source, der, dest)
        return dest

    @property
    def repository_leaf(self) -> Issued:
        return self.pki._lazy("repository", lambda: self.pki.issue_code_signing("Test Repository Signing"))

    def verifier(self, settings: VerificationSettings, *, chains: ChainValidator | None = None, **kw: Any) -> Verifier:
        return make_verifier(settings, chains or self.chains, **kw)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("verify")
    pki = TestPKI(base / "pki", tag="verify-trusted")
    other = TestPKI(base / "other", tag="verify-untrusted", fresh_keys=True)  # no key shared with `pki`
    roots = [pki.root.asn1, pki.tsa_root.asn1]
    store = TrustStore(roots, roots, "test roots (verify tests)")
    with TimestampServer(pki.tsa) as tsa, CRLServer() as crls:
        # Revocation: every certificate below a root carries a CDP; the CRLs are published before
        # anything is verified (the fetcher caches what it fetched).
        root_crl, tsa_crl, dead = crls.url("root.crl"), crls.url("tsa-root.crl"), closed_port_url("/dead.crl")
        revocable = pki.issue_code_signing("Revocable Signer", issuer=pki.root, crl_urls=[root_crl])
        revoked = pki.issue_code_signing("Revoked Signer", issuer=pki.root, crl_urls=[root_crl])
        revoked_tsa = pki.issue_tsa("Revoked Timestamping", crl_urls=[tsa_crl])
        unreachable = pki.issue_code_signing("Unavailable CRL Signer", issuer=pki.root, crl_urls=[dead],
                                             not_after=pki.now + timedelta(days=2))
        unreachable_tsa = pki.issue_tsa("Unavailable CRL Timestamping", crl_urls=[dead],
                                        not_after=pki.now + timedelta(days=2))
        revoked_tsa_later = pki.issue_tsa("Timestamping Revoked Later", crl_urls=[tsa_crl])
        crls.publish("root.crl", pki.make_crl(pki.root, revoked=[revoked.serial]))
        crls.publish("tsa-root.crl", pki.make_crl(
            pki.tsa_root, revoked=[revoked_tsa.serial, (revoked_tsa_later.serial, pki.now + timedelta(days=1))]))
        online = ChainValidator(store, RevocationOptions("online", cache_dir=base / "cache-online", timeout=2, budget=20))
        offline = ChainValidator(store, RevocationOptions("offline", cache_dir=base / "cache-offline"))
        chains = ChainValidator(store, RevocationOptions("off"))
        yield World(pki, other, base / "packages", tsa, crls, store, chains, online, offline,
                    revocable, revoked, revoked_tsa, unreachable, unreachable_tsa, revoked_tsa_later)
        for validator in (online, offline, chains):
            validator.close()
    shutil.rmtree(base / "packages", ignore_errors=True)


def later(days: float) -> datetime:
    return clock.now() + timedelta(days=days)


__all__ = [
    "SERVICE_INDEX",
    "World",
    "add_unsigned",
    "assemble",
    "author_attributes",
    "closed_port_url",
    "countersign_signature",
    "countersignature_of",
    "entry",
    "first_data_offset",
    "flip_byte",
    "identity_of",
    "later",
    "make_package",
    "make_signer_info",
    "map_countersignature",
    "patch",
    "primary_info",
    "raw_token",
    "read_signature",
    "replace_signature",
    "replace_unsigned",
    "timestamp_attribute",
    "with_bad_signature",
    "with_signer_info",
    "world",
]
