"""NuGet.Config trust settings: read (with file:line), merge like NuGet, edit, lint.

    >>> from trustpolicy._internal.config import load_trust_settings
    >>> settings = load_trust_settings(configfile="NuGet.Config")      # doctest: +SKIP
    >>> settings.mode, [s.name for s in settings.signers]               # doctest: +SKIP
    ('require', ['microsoft', 'nuget.org'])
"""

from trustpolicy._internal.config.hierarchy import (
    ConfigLocations,
    LoadedConfig,
    TrustSettings,
    load_config,
    load_trust_settings,
)
from trustpolicy._internal.config.nugetconfig import CertificateEntry, TrustedSigner
from trustpolicy._internal.config.rules import IdentityRule, PackageException, SignerScope, TrustRules
from trustpolicy.models import Location

__all__ = [
    "CertificateEntry",
    "ConfigLocations",
    "IdentityRule",
    "LoadedConfig",
    "Location",
    "PackageException",
    "SignerScope",
    "TrustRules",
    "TrustSettings",
    "TrustedSigner",
    "load_config",
    "load_trust_settings",
]
