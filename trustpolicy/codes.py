"""NuGet's NU30xx signature codes as data: one title each (feeds text output, SARIF rules, docs).

Titles are our own words for when each code fires (see ../shared/spec/verify.md section 10).
TP codes are trustpolicy's own findings that NuGet has no code for (graph integrity, missing files).
"""

from __future__ import annotations

HELP_URI = "https://learn.microsoft.com/nuget/reference/errors-and-warnings/{code}"

TITLES: dict[str, str] = {
    "NU3000": "Generic signature problem (missing timestamp in a strict context, invalid content, multiple timestamps)",
    "NU3001": "Signing input problem (certificate, password, or package already signed)",
    "NU3002": "Signature is not timestamped because no timestamper was given",
    "NU3003": "Signature cannot be decoded as CMS, or the package is not signed",
    "NU3004": "Package is unsigned but policy requires signed packages",
    "NU3005": "Package signature file entry is missing, duplicated or has invalid headers",
    "NU3006": "Signed ZIP64 packages are not supported",
    "NU3007": "Package signature format version is not supported",
    "NU3008": "Package integrity check failed: content does not match the signed hash",
    "NU3009": "Signature does not contain exactly one signer",
    "NU3010": "Primary signature has no signing certificate",
    "NU3011": "Primary signature is invalid (attributes or signing-certificate-v2)",
    "NU3012": "Signature validation failed (CMS signature or certificate chain)",
    "NU3013": "Certificate signature algorithm is not SHA-256/384/512 with RSA",
    "NU3014": "Signing certificate key is not RSA of at least 2048 bits",
    "NU3015": "Certificate has the lifetime-signing EKU",
    "NU3016": "Package hash uses an unsupported hash algorithm",
    "NU3017": "Signing certificate is not yet valid",
    "NU3018": "Signing certificate chain is untrusted or its revocation status is unknown",
    "NU3019": "Timestamp does not match the signature value",
    "NU3020": "Timestamp has no signing certificate",
    "NU3021": "Timestamp signature is invalid or its content is not TSTInfo",
    "NU3022": "Timestamp certificate signature algorithm is unsupported",
    "NU3023": "Timestamp certificate key is not RSA of at least 2048 bits",
    "NU3024": "Timestamp digest algorithm is unsupported",
    "NU3025": "Timestamp certificate is not yet valid",
    "NU3026": "Timestamp response nonce does not match the request",
    "NU3027": "Signature has no timestamp",
    "NU3028": "Timestamp certificate chain is untrusted, revoked or its revocation status is unknown",
    "NU3029": "Timestamp signature is invalid: no certificates could be read",
    "NU3030": "Timestamp message imprint uses an unsupported hash algorithm",
    "NU3031": "Repository countersignature is invalid",
    "NU3032": "More than one repository countersignature",
    "NU3033": "A repository primary signature cannot have a repository countersignature",
    "NU3034": "Signer is not in the trusted signers list",
    "NU3035": "Repository countersignature certificate chain cannot be built",
    "NU3036": "Timestamp time is outside the timestamp certificate's validity",
    "NU3037": "Signature validity period has expired",
    "NU3038": "A repository countersignature is required but missing",
    "NU3039": "Package has too many entries to be signed without ZIP64",
    "NU3040": "Same certificate trusted with conflicting allowUntrustedRoot values",
    "NU3042": "Root certificate is not in the code-signing or time-stamping bundle",
    "NU3043": "SHA-1 certificate fingerprints are not accepted",
    "TP0001": "Package file not found for a graph entry",
    "TP0002": "Package content hash does not match the restore graph's record",
    "TP0003": "Package file cannot be read",
    "TP0004": "Unexpected failure while judging the package (treated as invalid)",
}


def title(code: str) -> str:
    return TITLES.get(code, "Signature problem")


def help_uri(code: str) -> str | None:
    return HELP_URI.format(code=code.lower()) if code.startswith("NU") else None
