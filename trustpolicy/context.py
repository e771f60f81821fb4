"""The composition root: everything outside a package that can change its verdict, built once.

    context = TrustContext.build(TrustOptions(mode="require", directory="src/App"))
    verdict = context.verifier().verify_package("pkg.nupkg")

`TrustOptions` is what a caller chooses (the command-line flags); `TrustContext` is what they mean
once the effective NuGet.Config is read: the verification preset, the trust store, revocation, the
run's reference time, and the allow lists. `check`, `verify`, `init` and any other front end get all
of these from one context, so two front ends can never judge the same package differently.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from trustpolicy import __version__
from trustpolicy._internal import clock
from trustpolicy._internal.config import LoadedConfig, TrustedSigner, TrustSettings, load_config
from trustpolicy._internal.truststore import TrustStore
from trustpolicy._internal.verify.settings import (
    ACCEPT,
    REQUIRE,
    REVOCATION_MODES,
    VERIFY,
    RevocationOptions,
    VerificationSettings,
)
from trustpolicy.errors import UsageError

if TYPE_CHECKING:
    from trustpolicy._internal.chain import ChainValidator
    from trustpolicy._internal.config.rules import TrustRules
    from trustpolicy._internal.verify.allowlist import AllOf
    from trustpolicy._internal.verify.engine import Verifier

__all__ = ["MODES", "RevocationOptions", "TrustContext", "TrustOptions"]

# accept / require: signatureValidationMode; audit: judged as require, never fails; verify: the
# verify command's stricter preset (every signature, timestamps, error-level findings count).
MODES = ("accept", "require", "audit", "verify")


@dataclass(frozen=True)
class TrustOptions:
    """What the caller decides. Every field has the meaning of the command-line option of that name.

    Attributes:
        mode: accept | require | audit | verify; None takes signatureValidationMode from the config.
        configfile: one NuGet.Config used alone (as NuGet's --configfile); else the hierarchy seen
            from `directory` (default: the current folder), user and machine files included.
        trust_store: PEM files replacing the bundled .NET SDK roots; extra_roots: PEM files added.
        revocation: online | offline | off; revocation_data: folders of CRLs and OCSP responses.
        at: the moment to judge at; None reads the clock once.
        certificate_fingerprints: SHA-256 fingerprints of allowed primary signers (verify's option).
        cache_dir: verdict and revocation caches; None: the per-user cache folder.
        environ: the environment the config readers see (%VAR% expansion, NUGET_* locations).
    """

    mode: str | None = None
    configfile: str | None = None
    directory: str | None = None
    trust_store: tuple[str, ...] = ()
    extra_roots: tuple[str, ...] = ()
    revocation: str = "online"
    revocation_data: tuple[str, ...] = ()
    revocation_timeout: float = 5.0
    at: datetime | None = None
    certificate_fingerprints: tuple[str, ...] = ()
    cache_dir: str | None = None
    environ: Mapping[str, str] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class TrustContext:
    """Everything a verdict depends on besides the package bytes. Frozen; build it with `build`.

    Attributes:
        mode: the effective mode (see MODES).
        settings: the verification preset for that mode, with the revocation mode applied.
        loaded: the NuGet.Config files read, closest first, and their merged trust settings (`config`).
        trust_store: the roots; revocation: how revocation is checked.
        reference_time: the one moment the whole run is judged at.
        explicit_time: the moment was given (--at), not read from the clock.
        fingerprints: --certificate-fingerprint values (normalised SHA-256).
        cache_dir: where verdict and revocation caches live.
        configfile: the one NuGet.Config given (--configfile), which then also names package folders.
    """

    mode: str
    settings: VerificationSettings
    loaded: LoadedConfig
    trust_store: TrustStore
    revocation: RevocationOptions
    reference_time: datetime
    explicit_time: bool
    fingerprints: tuple[str, ...]
    cache_dir: Path
    configfile: str | None = None
    environ: Mapping[str, str] | None = field(default=None, compare=False)

    @classmethod
    def build(cls, options: TrustOptions | None = None, *, strict: bool = True) -> TrustContext:
        """Read the config and the trust files; raises TrustPolicyError (exit 2) for unusable input.

        `strict=False` accepts a config that verification must refuse (an invalid mode, a SHA-1
        fingerprint...), for front ends that report such problems instead (lint)."""
        options = options or TrustOptions()
        if options.at is not None and options.at.tzinfo is None:
            raise UsageError("--at needs a time zone")
        if options.revocation not in REVOCATION_MODES:
            raise UsageError(f"--revocation must be one of {', '.join(REVOCATION_MODES)}")
        for folder in options.revocation_data:
            if not Path(folder).is_dir():
                raise UsageError(f"--revocation-data: {folder} is not a directory")
        fingerprints = _fingerprints(options.certificate_fingerprints)

        directory = None if options.configfile else (options.directory or os.getcwd())
        loaded = load_config(options.configfile, directory, environ=options.environ)
        if strict:
            # What NuGet would misread or fail on is refused (file:line). The config's
            # signatureValidationMode matters unless a mode is given; `verify` reads it for its
            # non-empty-list rule, so an invalid value refuses verify too (fail closed).
            loaded.settings.require_usable(mode_given=options.mode not in (None, "verify"))
        mode = options.mode or loaded.settings.mode
        if mode not in MODES:
            raise UsageError(f"--mode must be one of {', '.join(MODES)}")
        preset = {"accept": ACCEPT, "require": REQUIRE, "audit": REQUIRE, "verify": VERIFY}[mode]
        cache_dir = Path(options.cache_dir) if options.cache_dir else _user_cache_dir()
        return cls(
            mode=mode,
            settings=preset.replace(revocation_mode=options.revocation),
            loaded=loaded,
            trust_store=TrustStore.from_files(options.trust_store, extra=options.extra_roots),
            revocation=RevocationOptions(
                mode=options.revocation,
                data_dirs=tuple(Path(d) for d in options.revocation_data),
                cache_dir=cache_dir / "revocation",
                timeout=options.revocation_timeout,
            ),
            reference_time=options.at or clock.now(),
            explicit_time=options.at is not None,
            fingerprints=fingerprints,
            cache_dir=cache_dir,
            configfile=options.configfile,
            environ=options.environ,
        )

    @property
    def config(self) -> TrustSettings:
        """The effective trust settings: mode, trusted signers, package sources, files read."""
        return self.loaded.settings

    def at(self, moment: datetime) -> TrustContext:
        """The same policy judged at another moment (a long-running server judges each package "now")."""
        if moment.tzinfo is None:
            raise ValueError("moments must be timezone-aware")
        return replace(self, reference_time=moment)

    @property
    def require_non_empty(self) -> bool:
        """An empty trustedSigners list fails every package: in require and audit mode, and for
        `verify` when the config says require (as `dotnet nuget verify` does)."""
        if self.mode == "verify":
            return self.config.mode == "require"
        return self.mode != "accept"

    def allow_lists(self) -> AllOf:
        """The lists every package must pass: trustedSigners (with the identity rules and signer scopes
        of <trustPolicy>), then --certificate-fingerprint values."""
        from trustpolicy._internal.verify.allowlist import compose

        return compose(self.config.signers, require_non_empty=self.require_non_empty, fingerprints=self.fingerprints,
                       rules=self.config.rules)

    def chain_validator(self) -> ChainValidator:
        """A new chain validator (one per process: it caches chains and revocation answers)."""
        from trustpolicy._internal.chain import ChainValidator

        return ChainValidator(self.trust_store, self.revocation)

    def verifier(self, chains: ChainValidator | None = None) -> Verifier:
        """A verifier for this context (pass `chains` to share one validator between verifiers)."""
        from trustpolicy._internal.verify.engine import Verifier

        return Verifier(
            self.settings,
            chains=chains or self.chain_validator(),
            at=self.reference_time,
            allow_lists=self.allow_lists(),
            exceptions=self.config.rules.exceptions,
        )

    def policy_digest(self) -> str:
        """Everything besides the package bytes that can change a verdict, as one digest (the verdict
        cache's key). Without an explicit moment a verdict holds for the current UTC day only, so
        expiry and fresh revocation data are picked up by the next day's run at the latest."""
        moment = self.reference_time.isoformat() if self.explicit_time else self.reference_time.date().isoformat()
        material = {
            "tool": __version__,
            "settings": self.settings.to_json(),
            "requireNonEmpty": self.require_non_empty,
            "signers": [_signer_meaning(signer) for signer in self.config.signers],
            "fingerprints": list(self.fingerprints),
            "roots": sorted(c.hex() for part in self.trust_store.key for c in part),
            "revocation": [self.revocation.mode, [str(d) for d in self.revocation.data_dirs]],
            "moment": moment,
        }
        if self.config.rules:  # a config without <trustPolicy> keeps the digest it always had
            material["trustPolicy"] = _rules_meaning(self.config.rules)
        return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def _signer_meaning(signer: TrustedSigner) -> list[object]:
    """What a trusted signer means for a verdict: not where it was written (file, line)."""
    certificates = sorted((c.fingerprint, c.hash_algorithm, c.allow_untrusted_root) for c in signer.certificates)
    return [signer.kind, signer.name, signer.service_index, sorted(signer.owners), certificates]


def _rules_meaning(rules: TrustRules) -> dict[str, object]:
    """The <trustPolicy> rules as verdicts see them. Unlike trustedSigners, where they are written
    counts too: verdicts name the rule that allowed a package, and its file and line."""
    return {
        "identities": [[r.name, r.kind, list(r.subject), sorted(p.fingerprint for p in r.issuers), sorted(r.ekus),
                        str(r.source)] for r in rules.identities],
        "scopes": sorted([s.signer, list(s.patterns), str(s.source)] for s in rules.scopes),
        "exceptions": sorted([e.package_id.lower(), e.versions.text, e.expires.isoformat(), e.reason, str(e.source)]
                             for e in rules.exceptions),
    }


def _fingerprints(values: tuple[str, ...]) -> tuple[str, ...]:
    if not values:
        return ()
    from trustpolicy._internal.verify.allowlist import normalize_sha256  # the X.509 stack: only when asked for

    try:
        return tuple(normalize_sha256(value) for value in values)
    except ValueError as error:
        raise UsageError(f"--certificate-fingerprint: {error}") from None


def _user_cache_dir() -> Path:
    import platformdirs  # deferred: only runs that use the default cache need it

    return Path(platformdirs.user_cache_dir("trustpolicy"))
