"""Every code trustpolicy reports, as data: NuGet's NU30xx signature codes, trustpolicy's own TP00xx
package findings, the TP1xxx configuration (lint) rules, and the TP2xxx findings of the
`<trustPolicy>` rules (identity rules, signer scopes, package exceptions).

Each code has a title (when it fires, in our words), a default level (the SARIF rule's default; the
level of one finding may differ by mode) and help text (what to do about it). docs/codes.md
describes when each code fires in each mode; SARIF rules and the report schema's enum come from here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["CODES", "Code", "CodeInfo", "Level", "help_uri", "info", "title"]

NUGET_HELP = "https://learn.microsoft.com/nuget/reference/errors-and-warnings/{code}"


class Level(enum.StrEnum):
    """How loud a finding is in this mode. Only statuses decide a verdict."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Code(enum.StrEnum):
    """A finding's code. A StrEnum: it compares, hashes and serialises as its text ("NU3034")."""

    NU3000 = "NU3000"
    NU3001 = "NU3001"
    NU3002 = "NU3002"
    NU3003 = "NU3003"
    NU3004 = "NU3004"
    NU3005 = "NU3005"
    NU3006 = "NU3006"
    NU3007 = "NU3007"
    NU3008 = "NU3008"
    NU3009 = "NU3009"
    NU3010 = "NU3010"
    NU3011 = "NU3011"
    NU3012 = "NU3012"
    NU3013 = "NU3013"
    NU3014 = "NU3014"
    NU3015 = "NU3015"
    NU3016 = "NU3016"
    NU3017 = "NU3017"
    NU3018 = "NU3018"
    NU3019 = "NU3019"
    NU3020 = "NU3020"
    NU3021 = "NU3021"
    NU3022 = "NU3022"
    NU3023 = "NU3023"
    NU3024 = "NU3024"
    NU3025 = "NU3025"
    NU3026 = "NU3026"
    NU3027 = "NU3027"
    NU3028 = "NU3028"
    NU3029 = "NU3029"
    NU3030 = "NU3030"
    NU3031 = "NU3031"
    NU3032 = "NU3032"
    NU3033 = "NU3033"
    NU3034 = "NU3034"
    NU3035 = "NU3035"
    NU3036 = "NU3036"
    NU3037 = "NU3037"
    NU3038 = "NU3038"
    NU3039 = "NU3039"
    NU3040 = "NU3040"
    NU3042 = "NU3042"
    NU3043 = "NU3043"
    # trustpolicy's own package findings (NuGet has no code for them)
    TP0001 = "TP0001"
    TP0002 = "TP0002"
    TP0003 = "TP0003"
    TP0004 = "TP0004"
    # configuration rules (lint, config loading): mistakes NuGet accepts without a word
    TP1001 = "TP1001"
    TP1002 = "TP1002"
    TP1003 = "TP1003"
    TP1004 = "TP1004"
    TP1005 = "TP1005"
    TP1006 = "TP1006"
    TP1007 = "TP1007"
    TP1008 = "TP1008"
    TP1009 = "TP1009"
    TP1010 = "TP1010"
    TP1011 = "TP1011"
    TP1012 = "TP1012"
    TP1013 = "TP1013"
    TP1014 = "TP1014"
    TP1015 = "TP1015"
    TP1016 = "TP1016"
    TP1017 = "TP1017"
    TP1018 = "TP1018"
    TP1019 = "TP1019"
    TP1020 = "TP1020"
    TP1021 = "TP1021"
    # <trustPolicy> rules: scopes and exceptions on packages, rules that lint finds too broad
    TP2001 = "TP2001"
    TP2002 = "TP2002"
    TP2003 = "TP2003"
    TP2004 = "TP2004"
    TP2005 = "TP2005"
    TP2006 = "TP2006"
    TP2007 = "TP2007"
    TP2008 = "TP2008"


@dataclass(frozen=True)
class CodeInfo:
    """What a code means. `name` is a short kebab-case handle (lint prints it; SARIF derives its rule name)."""

    code: Code
    name: str
    title: str
    level: Level  # the default level
    help: str


def _info(code: str, name: str, title: str, level: str, help: str) -> CodeInfo:
    return CodeInfo(Code(code), name, title, Level(level), help)


_TIMESTAMP_HELP = "Re-sign the package with a timestamp from a trusted RFC 3161 timestamp authority."
_RESTORE_HELP = "Delete the package from the packages folder and restore it again from a trusted source."

CODES: dict[Code, CodeInfo] = {
    info.code: info
    for info in (
        _info("NU3000", "signature-problem", "Generic signature problem (missing timestamp in a strict context, "
              "invalid content, multiple timestamps)", "error", "See the message for the exact cause."),
        _info("NU3001", "signing-input", "Signing input problem (certificate, password, or package already signed)",
              "error", "Check the signing certificate, its key and the package given to `sign`."),
        _info("NU3002", "not-timestamped", "Signature is not timestamped because no timestamper was given",
              "warning", "Pass --timestamper URL so the signature outlives its certificate."),
        _info("NU3003", "signature-invalid", "Signature cannot be decoded as CMS, or the package is not signed",
              "error", "The package's .signature.p7s is damaged or not a NuGet signature: get the package again."),
        _info("NU3004", "unsigned", "Package is unsigned but policy requires signed packages", "error",
              "Use a signed version of the package, or allow it explicitly in accept mode."),
        _info("NU3005", "signature-entry", "Package signature file entry is missing, duplicated or has invalid headers",
              "error", "The package's signature entry breaks NuGet's format rules: get the package again."),
        _info("NU3006", "signed-zip64", "Signed ZIP64 packages are not supported", "error",
              "NuGet cannot verify signed ZIP64 packages; ask the publisher for a non-ZIP64 package."),
        _info("NU3007", "signature-version", "Package signature format version is not supported", "error",
              "The signature uses a format version this tool does not know."),
        _info("NU3008", "integrity", "Package integrity check failed: content does not match the signed hash",
              "error", _RESTORE_HELP + " Investigate how the file changed."),
        _info("NU3009", "signer-count", "Signature does not contain exactly one signer", "error",
              "A NuGet signature has exactly one signer: the package is malformed."),
        _info("NU3010", "no-signing-certificate", "Primary signature has no signing certificate", "error",
              "The signature does not carry its signing certificate: the package is malformed."),
        _info("NU3011", "primary-signature-invalid", "Primary signature is invalid (attributes or "
              "signing-certificate-v2)", "error", "The signature's attributes break NuGet's rules."),
        _info("NU3012", "signature-validation", "Signature validation failed (CMS signature or certificate chain)",
              "error", "The signature or its certificate chain does not verify; do not trust this package."),
        _info("NU3013", "certificate-algorithm", "Certificate signature algorithm is not SHA-256/384/512 with RSA",
              "error", "The signer must use a SHA-2 RSA certificate."),
        _info("NU3014", "certificate-key", "Signing certificate key is not RSA of at least 2048 bits", "error",
              "The signer must use an RSA key of at least 2048 bits."),
        _info("NU3015", "lifetime-signing", "Certificate has the lifetime-signing EKU", "error",
              "A lifetime-signing certificate cannot sign NuGet packages."),
        _info("NU3016", "hash-algorithm", "Package hash uses an unsupported hash algorithm", "error",
              "The signature must hash the package with SHA-256, SHA-384 or SHA-512."),
        _info("NU3017", "certificate-not-yet-valid", "Signing certificate is not yet valid", "error",
              "Check the clock (--at) or the certificate's validity period."),
        _info("NU3018", "untrusted-chain", "Signing certificate chain is untrusted or its revocation status is "
              "unknown", "error", "Trust the root (--extra-roots, allowUntrustedRoot) or provide revocation data "
              "(--revocation-data)."),
        _info("NU3019", "timestamp-imprint", "Timestamp does not match the signature value", "error",
              _TIMESTAMP_HELP),
        _info("NU3020", "timestamp-no-certificate", "Timestamp has no signing certificate", "error", _TIMESTAMP_HELP),
        _info("NU3021", "timestamp-signature", "Timestamp signature is invalid or its content is not TSTInfo",
              "error", _TIMESTAMP_HELP),
        _info("NU3022", "timestamp-certificate-algorithm", "Timestamp certificate signature algorithm is unsupported",
              "error", _TIMESTAMP_HELP),
        _info("NU3023", "timestamp-certificate-key", "Timestamp certificate key is not RSA of at least 2048 bits",
              "error", _TIMESTAMP_HELP),
        _info("NU3024", "timestamp-digest", "Timestamp digest algorithm is unsupported", "error", _TIMESTAMP_HELP),
        _info("NU3025", "timestamp-not-yet-valid", "Timestamp certificate is not yet valid", "error",
              _TIMESTAMP_HELP),
        _info("NU3026", "timestamp-nonce", "Timestamp response nonce does not match the request", "error",
              "The timestamp server answered another request; try again or use another timestamper."),
        _info("NU3027", "no-timestamp", "Signature has no timestamp", "warning", _TIMESTAMP_HELP),
        _info("NU3028", "timestamp-chain", "Timestamp certificate chain is untrusted, revoked or its revocation "
              "status is unknown", "error", "Trust the timestamp authority's root or provide revocation data."),
        _info("NU3029", "timestamp-invalid", "Timestamp signature is invalid: no certificates could be read",
              "error", _TIMESTAMP_HELP),
        _info("NU3030", "timestamp-imprint-algorithm", "Timestamp message imprint uses an unsupported hash "
              "algorithm", "error", _TIMESTAMP_HELP),
        _info("NU3031", "countersignature-invalid", "Repository countersignature is invalid", "error",
              "The repository countersignature is malformed: get the package again from the repository."),
        _info("NU3032", "multiple-countersignatures", "More than one repository countersignature", "error",
              "A package may carry one repository countersignature only."),
        _info("NU3033", "countersigned-repository-signature", "A repository primary signature cannot have a "
              "repository countersignature", "error", "The package's signatures are malformed."),
        _info("NU3034", "untrusted-signer", "Signer is not in the trusted signers list", "error",
              "Add the signer to trustedSigners (trustpolicy trust ...) if you trust it."),
        _info("NU3035", "countersignature-chain", "Repository countersignature certificate chain cannot be built",
              "error", "Trust the repository's root or provide its intermediate certificates."),
        _info("NU3036", "timestamp-outside-validity", "Timestamp time is outside the timestamp certificate's "
              "validity", "error", _TIMESTAMP_HELP),
        _info("NU3037", "signature-expired", "Signature validity period has expired", "error",
              "Use a version signed with a timestamp, or one re-signed with a valid certificate."),
        _info("NU3038", "countersignature-missing", "A repository countersignature is required but missing",
              "error", "Get the package from the repository that countersigns it."),
        _info("NU3039", "too-many-entries", "Package has too many entries to be signed without ZIP64", "error",
              "Split the package: a signed package cannot be ZIP64."),
        _info("NU3040", "conflicting-allow-untrusted-root", "Same certificate trusted with conflicting "
              "allowUntrustedRoot values", "warning", "Give every entry of the certificate the same value."),
        _info("NU3042", "root-not-in-bundle", "Root certificate is not in the code-signing or time-stamping bundle",
              "warning", "Add the root with --extra-roots if you trust it."),
        _info("NU3043", "sha1-fingerprint", "SHA-1 certificate fingerprints are not accepted", "error",
              "Use the certificate's SHA-256 fingerprint."),
        _info("TP0001", "package-not-found", "Package file not found for a graph entry", "error",
              "Run the restore again, or pass --packages-dir with the folder that holds the packages."),
        _info("TP0002", "graph-hash-mismatch", "Package content hash does not match the restore graph's record",
              "error", _RESTORE_HELP + " Investigate how the file changed."),
        _info("TP0003", "unreadable", "Package file cannot be read", "error",
              "Check that the path is a readable .nupkg file."),
        _info("TP0004", "internal-failure", "Unexpected failure while judging the package (treated as invalid)",
              "error", "Report this as a bug in trustpolicy, with the package if you can share it."),
        _info("TP1001", "signers-in-accept-mode", "trustedSigners is set but signatureValidationMode is accept",
              "info", 'Add <add key="signatureValidationMode" value="require" /> to <config> to enforce the list.'),
        _info("TP1002", "require-without-signers", "signatureValidationMode is require but no trusted signer is "
              "configured", "error", "Add trusted signers, or set the mode to accept."),
        _info("TP1003", "fingerprint-not-hex", "A fingerprint is not hexadecimal", "error",
              "Write the hex fingerprint without spaces or separators."),
        _info("TP1004", "fingerprint-length", "A fingerprint has the wrong length for its hash algorithm", "error",
              "Use the fingerprint of the algorithm named in hashAlgorithm."),
        _info("TP1005", "allow-untrusted-root-ignored", "allowUntrustedRoot has no effect on a lower-case "
              "fingerprint", "warning", "Write the fingerprint in upper case."),
        _info("TP1006", "duplicate-certificate", "A signer lists the same certificate twice", "warning",
              "Remove one of them."),
        _info("TP1007", "empty-owner", "A repository's owners contain an empty item", "warning",
              "Remove the extra ';'."),
        _info("TP1008", "service-index-not-https", "A repository's serviceIndex is not an https URL", "warning",
              "Use the source's https V3 service index URL."),
        _info("TP1009", "service-index-without-source", "A repository's serviceIndex matches no package source",
              "info", "Nothing to do when packages come through a proxy; else check the URL."),
        _info("TP1010", "nuget-org-certificate-missing", "A nuget.org repository entry misses one of the certificates "
              "nuget.org has ever signed with", "warning", "Add it with the trust command shown "
              "(trustpolicy trust certificate NAME FINGERPRINT): nuget.org never replaces old countersignatures."),
        _info("TP1011", "duplicate-service-index", "Two repositories have the same serviceIndex", "warning",
              "Merge them into one <repository> entry."),
        _info("TP1012", "duplicate-section", "A section appears twice in one file; NuGet reads only the first",
              "warning", "Merge its content into the first section of that name."),
        _info("TP1013", "section-case", "A section name is not cased as NuGet expects, so NuGet ignores it",
              "warning", "Rename the section with the exact casing NuGet expects."),
        _info("TP1014", "duplicate-item", "An element is repeated; NuGet keeps one", "warning",
              "Remove the repeated element."),
        _info("TP1015", "duplicate-key", "Two package sources share a key", "warning",
              "Give each package source its own key, or remove the repeated one."),
        _info("TP1016", "unknown-element", "An element NuGet does not know in a trust section", "warning",
              "Remove it, or correct its name."),
        _info("TP1017", "owners-on-author", "An author entry has owners, which NuGet ignores", "warning",
              "Remove <owners>, or make the signer a <repository>."),
        _info("TP1018", "invalid-validation-mode", "signatureValidationMode is neither accept nor require",
              "error", 'Set it to "accept" or "require".'),
        _info("TP1019", "invalid-boolean", "A true/false setting has another value", "error",
              'Write "true" or "false".'),
        _info("TP1020", "unknown-hash-algorithm", "hashAlgorithm is not SHA256, SHA384 or SHA512", "error",
              "Use SHA256 with the SHA-256 fingerprint."),
        _info("TP1021", "owner-whitespace", "An owner name contains whitespace, so it can never match", "error",
              "Remove the spaces: nuget.org account names never contain whitespace."),
        _info("TP2001", "signer-out-of-scope", "A trusted signer signed a package outside its scope", "error",
              "If that signer may sign this package, add the id to its <scope> in <trustPolicy>; otherwise the "
              "package does not come from whom you expect."),
        _info("TP2002", "exception-expired", "An exception that would allow the package has expired", "error",
              "Sign the package or trust its signer; or renew the exception with a new expiry date and reason."),
        _info("TP2003", "exception-expiring", "An exception expires within 14 days", "warning",
              "Fix the package before the exception expires, or renew it with a new date and reason."),
        _info("TP2004", "exception-used", "A package is allowed only by an exception (unsigned or untrusted)",
              "info", "Remove the exception once the package is signed by a trusted signer."),
        _info("TP2005", "identity-too-broad", "An identity rule matches the certificates of many subscribers",
              "warning", "Pin the subscriber: a subject (CN, O) or its own identity EKU, with the CA that issues "
              "to it."),
        _info("TP2006", "identity-without-ca", "An identity rule pins no issuing CA", "error",
              'Add <issuer fingerprint="..."/> with the SHA-256 of a CA in the signer\'s chain (trustpolicy trust '
              "author NAME --identity-from PACKAGE writes one)."),
        _info("TP2007", "scope-unknown-signer", "A scope names no trusted signer", "warning",
              "Use the exact (case-sensitive) name of a trustedSigners entry or identity rule."),
        _info("TP2008", "scope-matches-all", "A scope pattern allows every package", "warning",
              "List the ids or prefixes the signer publishes (Contoso.*) instead of '*'."),
    )
}


def info(code: str) -> CodeInfo:
    """The registry entry of `code` (KeyError for a code that is not registered)."""
    return CODES[Code(code)]


def title(code: str) -> str:
    return info(code).title


def help_uri(code: str) -> str | None:
    """NuGet's documentation page for NU codes; trustpolicy's own codes are described in docs/codes.md."""
    return NUGET_HELP.format(code=code.lower()) if code.startswith("NU") else None
