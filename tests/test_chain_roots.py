"""The root indexes of chain.py (_Roots, _RootRegistry, _CallRegistry) answer exactly as pyhanko's
SimpleTrustManager.build(roots) / CertificateRegistry.build(roots) would, for the bundled roots, the
corpus and certificates built here (real ones, signed with the test PKI's keys)."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from datetime import timedelta

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
from datafiles import SIGNED
from pyhanko_certvalidator.authority import AuthorityWithCert, TrustAnchor
from pyhanko_certvalidator.registry import CertificateRegistry, SimpleTrustManager

from trustpolicy._internal.chain import ChainValidator, _Anchors, _CallRegistry, _name_skeleton, _RootRegistry, _Roots, _skeleton
from trustpolicy._internal.revocation import RevocationOptions
from trustpolicy._internal.signature import parse_signature
from trustpolicy._internal.truststore import TrustStore
from trustpolicy.testing.pki import CODE_SIGNING, Issued, TestPKI

OFF = RevocationOptions("off")

Cert = asn1_x509.Certificate


def corpus_certificates() -> list[Cert]:
    certs: list[Cert] = []
    for path in sorted(SIGNED.iterdir()):
        if path.suffix == ".nupkg":
            with zipfile.ZipFile(path) as archive:
                data = archive.read(".signature.p7s")
        else:
            data = path.read_bytes()
        signature = parse_signature(data)
        certs += signature.certificates
        for sig in (signature, signature.countersignature):
            for stamp in sig.timestamps if sig is not None else ():
                certs += stamp.certificates
    return list({c.sha256: c for c in certs}.values())


def fresh(certs: Iterable[Cert]) -> list[Cert]:
    """New objects for the same certificates (nothing computed on them yet)."""
    return [Cert.load(c.dump()) for c in certs]


def ident(item: TrustAnchor | Cert | None) -> tuple[str, bytes] | None:
    if item is None:
        return None
    if isinstance(item, TrustAnchor):
        return ("anchor", item.authority.certificate.sha256)
    return ("cert", item.sha256)


def assert_same_as_pyhanko(roots: list[Cert], probes: Iterable[Cert], call_certs: Iterable[Cert] = ()) -> None:
    """Every lookup of the trust manager and of the layered registry, against pyhanko's own."""
    call_certs = list(call_certs)
    simple = SimpleTrustManager.build(roots)
    full = CertificateRegistry.build(roots)
    for cert in call_certs:
        full.register(cert)
    ours = _Roots(roots)
    layered = _CallRegistry(_RootRegistry(ours), call_certs)
    anchors = _Anchors(ours)
    for probe in probes:
        authority = AuthorityWithCert(probe)
        assert ours.is_root(probe) == simple.is_root(probe)
        assert ident(ours.as_trust_anchor(authority)) == ident(simple.as_trust_anchor(authority))
        assert [ident(a) for a in ours.find_potential_issuers(probe)] == [ident(a) for a in simple.find_potential_issuers(probe)]
        assert [ident(i) for i in layered.find_potential_issuers(probe, anchors)] == [
            ident(i) for i in full.find_potential_issuers(probe, simple)
        ]
        for name in (probe.subject, probe.issuer):
            assert [ident(c) for c in layered.retrieve_by_name(name)] == [ident(c) for c in full.retrieve_by_name(name)]
            assert [ident(c) for c in layered.retrieve_by_name(name, probe)] == [ident(c) for c in full.retrieve_by_name(name, probe)]
        key_hash = probe.public_key.sha1
        assert [ident(c) for c in layered.retrieve_many_by_key_hash(key_hash)] == [ident(c) for c in full.retrieve_many_by_key_hash(key_hash)]
        for key_id in {key_hash, probe.key_identifier, probe.authority_key_identifier} - {None}:
            assert [ident(c) for c in layered.retrieve_many_by_key_identifier(key_id)] == [
                ident(c) for c in full.retrieve_many_by_key_identifier(key_id)
            ]
        assert ident(layered.retrieve_by_issuer_serial(probe.issuer_serial)) == ident(full.retrieve_by_issuer_serial(probe.issuer_serial))
    assert [ident(c) for c in layered] == [ident(c) for c in full]


# --- certificates with chosen name encodings -------------------------------------------------------


def attr(oid: x509.ObjectIdentifier, value: str, kind: _ASN1Type = _ASN1Type.UTF8String) -> x509.NameAttribute:
    return x509.NameAttribute(oid, value, _type=kind)


def make(
    pki: TestPKI,
    subject: x509.Name,
    *,
    issuer: Issued | None = None,
    issuer_name: x509.Name | None = None,
    ca: bool = True,
    aki: bool = True,
    key=None,  # type: ignore[no-untyped-def]
    serial: int | None = None,
    days: int = 3650,
) -> Issued:
    """A certificate whose issuer field is `issuer_name` as given (default: the issuer's subject, as
    encoded there), signed by `issuer`'s key (self-signed when None)."""
    private_key = key if key is not None else pki.key()
    signer = issuer.private_key if issuer is not None else private_key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name or (issuer.certificate.subject if issuer is not None else subject))
        .public_key(private_key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(pki.now - timedelta(days=30))
        .not_valid_after(pki.now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(private_key.public_key()), critical=False)
    )
    if not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([CODE_SIGNING]), critical=False)
    if aki:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
    return Issued(str(subject), builder.sign(signer, hashes.SHA256()), private_key, issuer)


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI(tag="roots")


@pytest.fixture(scope="module")
def bundled_roots() -> list[Cert]:
    store = TrustStore.bundled()
    return list({c.sha256: c for c in (*store.roots("code_signing"), *store.roots("time_stamping"))}.values())


# --- the whole bundle and the corpus -------------------------------------------------------------


@pytest.mark.parametrize("purpose", ["code_signing", "time_stamping"])
def test_bundled_roots_answer_like_pyhanko(purpose: str, bundled_roots: list[Cert], pki: TestPKI) -> None:
    roots = fresh(TrustStore.bundled().roots(purpose))
    corpus = corpus_certificates()
    test_pki = [pki.root.asn1, pki.intermediate.asn1, pki.leaf.asn1, pki.tsa_root.asn1, pki.tsa.asn1]
    # the roots themselves (fresh objects: not the indexed ones), the other bundle, the corpus, the test PKI
    assert_same_as_pyhanko(roots, [*fresh(bundled_roots), *corpus, *test_pki], call_certs=corpus)


def plain(name: asn1_x509.Name) -> bool:
    """Whether `_name_skeleton` reads this name without preparing any value."""
    return all(len(rdn) == 1 and isinstance(v := rdn[0]["value"].native, str) and v.isascii() and v.isprintable()
               for rdn in name.chosen)


def test_preparing_printable_ascii_only_lowercases_letters_and_moves_spaces() -> None:
    """The fact `_name_skeleton` rests on, checked against asn1crypto for every printable character."""
    for code in range(0x20, 0x7F):
        text = f"a{chr(code)}B {chr(code)}"
        hashable = asn1_x509.Name.build({"common_name": text}).hashable
        assert _skeleton(hashable) == _skeleton("common_name" + text.lower()), repr(chr(code))


def test_name_skeleton_is_the_skeleton_of_the_hashable(bundled_roots: list[Cert]) -> None:
    roots = fresh(bundled_roots)
    assert sum(plain(root.subject) for root in roots) > 0.8 * len(roots)  # the cheap path is the usual one
    for root in roots:
        assert _name_skeleton(root.subject) == _skeleton(root.subject.hashable), root.subject.human_friendly


def test_building_the_index_prepares_only_names_it_cannot_read_plainly(bundled_roots: list[Cert]) -> None:
    roots = fresh(bundled_roots)
    _RootRegistry(_Roots(roots))
    for root in roots:
        prepared = [ntv._prepped is not None for rdn in root.subject.chosen for ntv in rdn]
        if plain(root.subject):
            assert not any(prepared), root.subject.human_friendly


def test_registering_a_call_does_not_hash_every_root_key(bundled_roots: list[Cert], pki: TestPKI) -> None:
    base = _RootRegistry(_Roots(bundled_roots))
    _CallRegistry(base, [pki.intermediate.asn1, pki.leaf.asn1])
    assert base._key_hashes is None and base._key_ids is None


# --- names encoded differently --------------------------------------------------------------------


def test_root_is_found_through_a_differently_encoded_issuer_name(pki: TestPKI) -> None:
    root = make(pki, x509.Name([
        attr(NameOID.COUNTRY_NAME, "US", _ASN1Type.PrintableString),
        attr(NameOID.ORGANIZATION_NAME, "Encoding Test Corp", _ASN1Type.PrintableString),
        attr(NameOID.COMMON_NAME, "Encoding Test Root", _ASN1Type.PrintableString),
    ]))
    variants = [
        # UTF8String, other case, extra inner and outer spaces
        [attr(NameOID.COUNTRY_NAME, "us"), attr(NameOID.ORGANIZATION_NAME, "ENCODING test CORP"),
         attr(NameOID.COMMON_NAME, "  encoding   TEST root ")],
        # BMPString, and full-width letters (NFKC folds them to ASCII)
        [attr(NameOID.COUNTRY_NAME, "US", _ASN1Type.PrintableString),
         attr(NameOID.ORGANIZATION_NAME, "Encoding Test Corp", _ASN1Type.BMPString),
         attr(NameOID.COMMON_NAME, "\uff25\uff4e\uff43\uff4f\uff44\uff49\uff4e\uff47 Test Root")],
    ]
    root_asn1 = root.asn1
    assert plain(root_asn1.subject)  # the root takes the cheap path
    store = TrustStore([root_asn1], [root_asn1], "encodings")
    for attributes in variants:
        for aki in (True, False):
            ca = make(pki, pki.name(f"Encoding CA {aki}"), issuer=root, issuer_name=x509.Name(attributes), aki=aki)
            leaf = make(pki, pki.name("Encoding leaf"), issuer=ca, ca=False)
            assert ca.asn1.issuer.dump() != root_asn1.subject.dump() and ca.asn1.issuer == root_asn1.subject
            assert [ident(a) for a in _Roots([root_asn1]).find_potential_issuers(ca.asn1)] == [("anchor", root_asn1.sha256)]
            assert_same_as_pyhanko([root_asn1], [ca.asn1, leaf.asn1, root_asn1], call_certs=[ca.asn1])
            result = ChainValidator(store, OFF).validate(leaf.asn1, [ca.asn1], moment=pki.now, purpose="code_signing")
            assert (result.trusted, result.status) == (True, "valid"), result.message
            assert result.path[-1].sha256 == root_asn1.sha256


def test_root_with_a_name_outside_the_plain_path_is_found_exactly(pki: TestPKI) -> None:
    root = make(pki, x509.Name([
        attr(NameOID.ORGANIZATION_NAME, "Zürich Vertrauen AG"),
        attr(NameOID.COMMON_NAME, "Zürich Root"),
        attr(NameOID.EMAIL_ADDRESS, "pki@example.ch", _ASN1Type.IA5String),
    ]))
    issuer_name = x509.Name([
        attr(NameOID.ORGANIZATION_NAME, "ZÜRICH  VERTRAUEN AG", _ASN1Type.BMPString),
        attr(NameOID.COMMON_NAME, "zürich root"),
        attr(NameOID.EMAIL_ADDRESS, "pki@example.ch", _ASN1Type.IA5String),
    ])
    ca = make(pki, pki.name("Zürich CA"), issuer=root, issuer_name=issuer_name, aki=False)
    leaf = make(pki, pki.name("Zürich leaf"), issuer=ca, ca=False)
    root_asn1 = root.asn1
    assert not plain(root_asn1.subject)
    assert_same_as_pyhanko([root_asn1], [ca.asn1, leaf.asn1, root_asn1], call_certs=[ca.asn1])
    result = ChainValidator(TrustStore([root_asn1], [root_asn1], "zürich"), OFF).validate(
        leaf.asn1, [ca.asn1], moment=pki.now, purpose="code_signing"
    )
    assert (result.trusted, result.status) == (True, "valid"), result.message


@pytest.mark.parametrize(
    "attributes",
    [
        # asn1crypto IDNA-decodes an e-mail address's host: "xn--zrich-kva" reads "zürich"
        [attr(NameOID.COMMON_NAME, "Punycode Root"), attr(NameOID.EMAIL_ADDRESS, "pki@xn--zrich-kva.example", _ASN1Type.IA5String)],
        # U+4142 U+4344 in UTF-16 are the bytes "ABCD": printable, but not the value
        [attr(NameOID.COMMON_NAME, "\u4142\u4344", _ASN1Type.BMPString)],
        [attr(NameOID.COMMON_NAME, "Teletex Root", _ASN1Type.T61String)],
    ],
    ids=["idna-email", "bmp", "teletex"],
)
def test_names_whose_bytes_look_plain_are_read_as_asn1crypto_reads_them(pki: TestPKI, attributes: list[x509.NameAttribute]) -> None:
    root = make(pki, x509.Name(attributes))
    ca = make(pki, pki.name("Looks plain CA"), issuer=root, aki=False)
    assert _name_skeleton(root.asn1.subject) == _skeleton(root.asn1.subject.hashable)
    assert [ident(a) for a in _Roots([root.asn1]).find_potential_issuers(ca.asn1)] == [("anchor", root.asn1.sha256)]
    assert_same_as_pyhanko([root.asn1], [ca.asn1, root.asn1], call_certs=[ca.asn1])


def test_multi_valued_rdn_root(pki: TestPKI) -> None:
    root = make(pki, x509.Name([x509.RelativeDistinguishedName([
        attr(NameOID.ORGANIZATION_NAME, "Multi Corp"), attr(NameOID.COMMON_NAME, "Multi Root")
    ])]))
    ca = make(pki, pki.name("Multi CA"), issuer=root)
    assert not plain(root.asn1.subject)
    assert_same_as_pyhanko([root.asn1], [ca.asn1, root.asn1])
    assert [ident(a) for a in _Roots([root.asn1]).find_potential_issuers(ca.asn1)] == [("anchor", root.asn1.sha256)]


# --- keys, identifiers, duplicates -----------------------------------------------------------------


def test_certificate_without_aki_finds_its_root(pki: TestPKI) -> None:
    store = TrustStore([pki.root.asn1], [pki.root.asn1], "no aki")
    ca = pki.issue_ca("No AKI CA", issuer=pki.root, aki=False)
    leaf = pki.issue_code_signing("Under no AKI CA", issuer=ca)
    assert ca.asn1.authority_key_identifier is None
    assert [ident(a) for a in _Roots([pki.root.asn1]).find_potential_issuers(ca.asn1)] == [("anchor", pki.root.asn1.sha256)]
    result = ChainValidator(store, OFF).validate(leaf.asn1, [ca.asn1], moment=pki.now, purpose="code_signing")
    assert (result.trusted, result.status) == (True, "valid")


def test_same_subject_as_a_root_with_another_key_is_not_a_root(pki: TestPKI, bundled_roots: list[Cert]) -> None:
    real = next(c for c in TrustStore.bundled().roots("code_signing") if c.subject.native.get("common_name") == "DigiCert Assured ID Root CA")
    subject = x509.load_der_x509_certificate(real.dump()).subject  # the same name, the same encoding
    impostor = make(pki, subject)
    under_impostor = make(pki, pki.name("Impostor leaf"), issuer=impostor, ca=False)
    under_impostor_no_aki = make(pki, pki.name("Impostor leaf 2"), issuer=impostor, ca=False, aki=False)
    assert impostor.asn1.subject.dump() == real.subject.dump()
    roots = _Roots(TrustStore.bundled().roots("code_signing"))
    assert not roots.is_root(impostor.asn1) and roots.as_trust_anchor(AuthorityWithCert(impostor.asn1)) is None
    # its AKI names the impostor's key: the real root is no potential issuer; without an AKI it is one
    assert list(roots.find_potential_issuers(under_impostor.asn1)) == []
    assert [ident(a) for a in roots.find_potential_issuers(under_impostor_no_aki.asn1)] == [("anchor", real.sha256)]
    assert_same_as_pyhanko(
        list(TrustStore.bundled().roots("code_signing")),
        [impostor.asn1, under_impostor.asn1, under_impostor_no_aki.asn1],
        call_certs=[impostor.asn1],
    )
    validator = ChainValidator(TrustStore.bundled(), OFF)
    result = validator.validate(under_impostor.asn1, [impostor.asn1], moment=pki.now, purpose="code_signing")
    assert (result.trusted, result.status) == (False, "untrusted-root"), result.message
    assert result.path[-1].sha256 == impostor.asn1.sha256
    # without an AKI the real root is tried by name, and its key does not verify the leaf
    result = validator.validate(under_impostor_no_aki.asn1, [impostor.asn1], moment=pki.now, purpose="code_signing")
    assert (result.status, result.path[-1].sha256) == ("invalid", real.sha256)
    assert "signature" in result.message


def test_reissued_and_rolled_over_roots_answer_like_pyhanko(pki: TestPKI) -> None:
    key1, key2, key3, key4, key5 = (pki.key() for _ in range(5))
    name = pki.name("Rollover Root")
    first = make(pki, name, key=key1, serial=1)
    reissued = make(pki, name, key=key1, serial=2, days=7000)  # same name and key: the same anchor
    rolled = make(pki, name, key=key2, serial=3)
    lower = x509.Name([attr(a.oid, a.value.lower()) for a in name])  # the same name, written otherwise
    renamed = make(pki, lower, key=key3, serial=4)
    clash = make(pki, name, key=key4, serial=1)  # same issuer and serial as `first`: not in the registry
    hyphen = make(pki, pki.name("Rollover-Root"), key=key5, serial=5)  # another name, the same skeleton
    roots = [first.asn1, reissued.asn1, rolled.asn1, renamed.asn1, clash.asn1, hyphen.asn1]
    children = [
        make(pki, pki.name(f"Child {i} {aki}"), issuer=parent, aki=aki)
        for i, parent in enumerate((first, reissued, rolled, renamed, clash, hyphen))
        for aki in (True, False)
    ]
    alias = make(pki, pki.name("Alias of the first root"), key=key1, serial=6)  # a root's key, another name
    probes = [*fresh(roots), *(c.asn1 for c in children), alias.asn1]
    assert_same_as_pyhanko(roots, probes, call_certs=[children[0].asn1])
    assert_same_as_pyhanko(roots[::-1], probes)
    ours = _Roots(roots)
    no_aki = children[1].asn1
    expected = [("anchor", r.sha256) for r in (first.asn1, rolled.asn1, renamed.asn1, clash.asn1)]
    assert [ident(a) for a in ours.find_potential_issuers(no_aki)] == expected
    assert ident(ours.as_trust_anchor(AuthorityWithCert(reissued.asn1))) == ("anchor", first.asn1.sha256)
    assert ours.is_root(reissued.asn1) and ours.is_root(renamed.asn1) and not ours.is_root(alias.asn1)
    assert ours.as_trust_anchor(AuthorityWithCert(alias.asn1)) is None
    assert _skeleton(hyphen.asn1.subject.hashable) == _skeleton(first.asn1.subject.hashable)
    assert [c.sha256 for c in _RootRegistry(ours).by_name(first.asn1.subject.hashable)] == [
        r.sha256 for r in (first.asn1, reissued.asn1, rolled.asn1, renamed.asn1)
    ]


# --- names asn1crypto cannot prepare: fail closed, as before ----------------------------------------


def test_root_name_that_cannot_be_prepared_fails_every_chain_as_before(pki: TestPKI) -> None:
    bad = make(pki, x509.Name([attr(NameOID.COMMON_NAME, "Private \ue000 Root")]))
    with pytest.raises(ValueError):
        SimpleTrustManager.build([bad.asn1])
    with pytest.raises(ValueError):
        _Roots([bad.asn1])
    store = TrustStore([pki.root.asn1, bad.asn1], [pki.root.asn1, bad.asn1], "one bad root")
    validator = ChainValidator(store, OFF)
    for _ in range(2):  # and again: nothing half-built is kept
        result = validator.validate(pki.leaf.asn1, [pki.intermediate.asn1], moment=pki.now, purpose="code_signing")
        assert (result.trusted, result.status) == (False, "invalid")
        assert "chain validation failed" in result.message


def test_leaf_name_that_cannot_be_prepared_fails_as_before(pki: TestPKI) -> None:
    leaf = make(pki, x509.Name([attr(NameOID.COMMON_NAME, "Private \ue000 signer")]), issuer=pki.intermediate, ca=False)
    roots = [pki.root.asn1]
    for manager in (SimpleTrustManager.build(roots), _Roots(roots)):
        with pytest.raises(ValueError):
            manager.as_trust_anchor(AuthorityWithCert(leaf.asn1))
        with pytest.raises(ValueError):
            manager.is_root(leaf.asn1)
    result = ChainValidator(TrustStore(roots, roots, "test"), OFF).validate(
        leaf.asn1, [pki.intermediate.asn1], moment=pki.now, purpose="code_signing"
    )
    assert (result.trusted, result.status) == (False, "invalid") and "chain validation failed" in result.message
