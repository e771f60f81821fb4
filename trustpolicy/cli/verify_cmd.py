"""`trustpolicy verify`: judge package files with the verify command's policy (verify.md 1, 9).

Like `dotnet nuget verify`: the VERIFY preset, the trustedSigners and signatureValidationMode of the
NuGet.Config in effect (--configfile picks the file), and --certificate-fingerprint as an extra
allow list. Exit 0 when every package is valid, 1 when any is invalid, 2 for bad usage or an
unusable config / trust file. A package that cannot be read is an invalid package, not an error.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from pathlib import Path
from typing import Any

from trustpolicy import __version__, clock
from trustpolicy.cli.options import add_trust_options, parse_at
from trustpolicy.errors import UsageError
from trustpolicy.verify.allowlist import normalize_sha256
from trustpolicy.verify.models import PackageVerdict, format_moment
from trustpolicy.verify.settings import VERIFY

EXIT_OK, EXIT_INVALID = 0, 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="verify package signatures (like dotnet nuget verify)",
        description="Verify the signatures of .nupkg files with the verify command's policy.",
    )
    parser.add_argument("packages", nargs="+", metavar="PACKAGE", help="package files (wildcards allowed)")
    parser.add_argument("--all", action="store_true", help="run every verification (today: signatures, the default)")
    parser.add_argument(
        "--certificate-fingerprint", action="append", default=[], metavar="FP",
        help="SHA-256 fingerprint (hex, any case) of an allowed primary signer certificate; repeatable",
    )
    add_trust_options(parser)
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    parser.set_defaults(func=run)


def _expand(patterns: list[str]) -> list[str]:
    """Paths as given; a pattern with wildcards that names no file expands (sorted)."""
    out: list[str] = []
    for pattern in patterns:
        if not os.path.exists(pattern) and glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern))
            out.extend(matches or [pattern])  # no match: reported as an unreadable package
        else:
            out.append(pattern)
    return out


def run(args: argparse.Namespace) -> int:
    # Everything that can make the run unusable is checked before any package is judged (exit 2).
    try:
        fingerprints = [normalize_sha256(value) for value in args.certificate_fingerprint]
    except ValueError as error:
        raise UsageError(f"--certificate-fingerprint: {error}") from None
    at = parse_at(args.at) or clock.now()
    for directory in args.revocation_data:
        if not Path(directory).is_dir():
            raise UsageError(f"--revocation-data: {directory} is not a directory")
    if args.configfile is not None and not Path(args.configfile).is_file():
        raise UsageError(f"--configfile: {args.configfile} does not exist")

    from trustpolicy.chain import ChainValidator
    from trustpolicy.config import load_trust_settings
    from trustpolicy.revocation import RevocationOptions
    from trustpolicy.truststore import TrustStore
    from trustpolicy.verify.engine import Verifier

    # --configfile: that file alone; otherwise NuGet's hierarchy seen from the current directory.
    trust = load_trust_settings(configfile=args.configfile)
    store = TrustStore.from_files(args.trust_store, extra=args.extra_roots)
    revocation = RevocationOptions(mode=args.revocation, data_dirs=tuple(Path(d) for d in args.revocation_data))
    with ChainValidator(store, revocation) as chains:
        verifier = Verifier.from_trust_settings(
            trust,
            VERIFY,
            trust_store=store,
            revocation=revocation,
            chain_validator=chains,
            at=at,
            certificate_fingerprints=fingerprints,
        )
        verdicts = [verifier.verify_package(path) for path in _expand(args.packages)]

    for warning in _config_warnings(trust):
        print(f"trustpolicy: warning: {warning}", file=sys.stderr)
    if args.format == "json":
        document = _document(verdicts, verifier, trust, store, fingerprints)
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    else:
        _render_text(verdicts)
    return EXIT_OK if all(v.passed for v in verdicts) else EXIT_INVALID


def _document(verdicts: list[PackageVerdict], verifier: Any, trust: Any, store: Any, fingerprints: list[str]) -> dict[str, Any]:
    settings = verifier.settings.to_json()
    settings.update(
        at=format_moment(verifier.at),
        signatureValidationMode=getattr(trust, "mode", "accept"),
        configFiles=[str(f) for f in getattr(trust, "files", ()) or ()],
        trustedSigners=len(getattr(trust, "signers", ()) or ()),
        certificateFingerprints=fingerprints,
        configWarnings=_config_warnings(trust),
    )
    valid = sum(1 for v in verdicts if v.passed)
    return {
        "tool": {"name": "trustpolicy", "version": __version__},
        "settings": settings,
        "trustStore": store.description,
        "packages": [v.to_json() for v in verdicts],
        "summary": {"total": len(verdicts), "valid": valid, "invalid": len(verdicts) - valid},
    }


def _config_warnings(trust: Any) -> list[str]:
    """Config load warnings (NU3040...) as "file:line: CODE: message"."""
    out = []
    for warning in getattr(trust, "warnings", ()) or ():
        code, message, source = (getattr(warning, name, None) for name in ("code", "message", "source"))
        out.append(f"{source}: {code}: {message}" if code and message else str(warning))
    return out


# --- text ----------------------------------------------------------------------------------------

_STYLES = {"valid": "bold green", "invalid": "bold red", "error": "red", "warning": "yellow", "info": "dim"}


def _render_text(verdicts: list[PackageVerdict]) -> None:
    console = None
    if sys.stdout.isatty():  # colours only on a terminal
        from rich.console import Console

        console = Console(highlight=False, soft_wrap=True)

    def emit(text: str, style: str | None = None) -> None:
        if console is not None:
            from rich.markup import escape

            console.print(f"[{style}]{escape(text)}[/]" if style else escape(text))
        else:
            print(text)

    for verdict in verdicts:
        name = f"{verdict.id} {verdict.version}" if verdict.id else None
        head = f"{verdict.verdict.upper():8} {verdict.path}" + (f" ({name})" if name else "")
        emit(head, _STYLES[verdict.verdict])
        if verdict.signed is False:
            emit("  unsigned")
        for sig in verdict.signatures:
            parts = [f"{sig.kind} primary signature" if sig.placement == "primary" else "repository countersignature"]
            if sig.subject:
                parts.append(sig.subject)
            if "SHA256" in sig.fingerprints:
                parts.append(f"SHA256 {sig.fingerprints['SHA256']}")
            parts.append(f"timestamp {format_moment(sig.timestamp)}" if sig.timestamp else "no valid timestamp")
            if sig.service_index:
                parts.append(f"service index {sig.service_index}")
            if sig.owners:
                parts.append(f"owners {';'.join(sig.owners)}")
            parts.append(sig.status.label if sig.status is not None else "not evaluated")
            emit("  " + ", ".join(parts))
        if verdict.trusted_signer is not None:
            matched = verdict.trusted_signer
            emit(f"  trusted signer: {matched.kind} '{matched.name}' ({matched.fingerprint})")
        for issue in verdict.issues:
            emit(f"  {issue.level} {issue.code}: {issue.message}", _STYLES[issue.level])
    valid = sum(1 for v in verdicts if v.passed)
    emit(f"{len(verdicts)} package{'s' if len(verdicts) != 1 else ''}: {valid} valid, {len(verdicts) - valid} invalid")
