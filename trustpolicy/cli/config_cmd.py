"""`trustpolicy config show`: the effective trust settings, each entry with its file and line
(the `<trustPolicy>` rules too, when there are any)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from trustpolicy._internal.config.hierarchy import FolderSetting, LoadedConfig, TrustSettings, load_config
from trustpolicy._internal.config.rules import TrustRules
from trustpolicy.models import Location


def add_scope_arguments(parser: argparse.ArgumentParser) -> None:
    """--configfile F | --directory D, shared by config show and lint."""
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--configfile", metavar="FILE", help="use this NuGet.Config alone (as NuGet's --configfile)")
    scope.add_argument(
        "--directory",
        metavar="DIR",
        help="read the config hierarchy as NuGet sees it from DIR (default: the current directory)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("config", help="show the effective NuGet trust settings")
    verbs = parser.add_subparsers(dest="config_verb", metavar="VERB")
    show = verbs.add_parser("show", help="effective signatureValidationMode, sources and trusted signers, with file:line")
    for target in (parser, show):
        add_scope_arguments(target)
        target.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(func=run)
    show.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_config(args.configfile, args.directory)
    print(render_json(loaded) if args.format == "json" else render_text(loaded))
    return 0


def _where(location: Location | None) -> dict[str, Any] | None:
    return None if location is None else {"path": location.path, "line": location.line}


def _folder(folder: FolderSetting | None) -> dict[str, Any] | None:
    return None if folder is None else {"path": folder.path, "source": _where(folder.source)}


def _mode(settings: TrustSettings) -> dict[str, Any]:
    """NuGet's reading of signatureValidationMode, the value as written and whether it is valid."""
    return {
        "value": settings.mode,
        "written": settings.mode_value,
        "valid": settings.mode_problem is None,
        "source": _where(settings.mode_source),
    }


def as_dict(loaded: LoadedConfig) -> dict[str, Any]:
    settings = loaded.settings
    return {
        "files": [
            {"path": f.path, "scope": f.scope, "writable": f.writable, "exists": f.parsed is not None} for f in loaded.files
        ],
        "signatureValidationMode": _mode(settings),
        "globalPackagesFolder": _folder(settings.global_packages_folder),
        "repositoryPath": _folder(settings.repository_path),
        "packageSources": [
            {"name": name, "url": url, "source": _where(loaded.source_locations.get(name))}
            for name, url in settings.sources.items()
        ],
        "trustedSigners": [
            {
                "kind": s.kind,
                "name": s.name,
                "serviceIndex": s.service_index,
                "owners": list(s.owners),
                "source": _where(s.source),
                "certificates": [
                    {
                        "fingerprint": c.fingerprint,
                        "writtenFingerprint": c.written_fingerprint,
                        "hashAlgorithm": c.hash_algorithm,
                        "allowUntrustedRoot": c.allow_untrusted_root,
                        "writtenAllowUntrustedRoot": c.written_allow_untrusted_root,
                        "source": _where(c.source),
                    }
                    for c in s.certificates
                ],
            }
            for s in settings.signers
        ],
        "warnings": [{"code": w.code.value, "message": w.message, "source": _where(w.where)} for w in settings.warnings],
    } | ({"trustPolicy": _rules(settings.rules)} if settings.rules else {})


def _rules(rules: TrustRules) -> dict[str, Any]:
    return {
        "identities": [
            {
                "name": r.name,
                "kind": r.kind,
                "subject": dict(r.subject),
                "issuers": [{"fingerprint": p.fingerprint, "source": _where(p.source)} for p in r.issuers],
                "ekus": list(r.ekus),
                "source": _where(r.source),
            }
            for r in rules.identities
        ],
        "scopes": [{"signer": s.signer, "patterns": list(s.patterns), "source": _where(s.source)} for s in rules.scopes],
        "exceptions": [
            {
                "id": e.package_id,
                "versions": e.versions.text,
                "expires": e.expires.isoformat(),
                "reason": e.reason,
                "source": _where(e.source),
            }
            for e in rules.exceptions
        ],
    }


def render_json(loaded: LoadedConfig) -> str:
    return json.dumps(as_dict(loaded), indent=2)


def render_text(loaded: LoadedConfig) -> str:
    settings = loaded.settings
    lines = ["Config files (closest first):"]
    for f in loaded.files:
        state = "" if f.parsed is not None else "  (does not exist)"
        lines.append(f"  {f.path}  [{f.scope}{'' if f.writable else ', read-only'}]{state}")
    mode_from = f"  ({settings.mode_source})" if settings.mode_source else "  (default)"
    mode = settings.mode
    if settings.mode_problem is not None:  # the raw value: NuGet's silent fallback must be visible
        mode = f"{settings.mode_value!r}  [invalid: neither accept nor require; NuGet reads it as {settings.mode}]"
    lines += ["", f"signatureValidationMode: {mode}{mode_from}"]
    for name, folder in (("globalPackagesFolder", settings.global_packages_folder), ("repositoryPath", settings.repository_path)):
        if folder is not None:
            lines.append(f"{name}: {folder.path}  ({folder.source})")
    lines += ["", "Package sources:"]
    for name, url in settings.sources.items():
        where = loaded.source_locations.get(name)
        lines.append(f"  {name}: {url}" + (f"  ({where})" if where and where.line else "  (NuGet's default)"))
    if not settings.sources:
        lines.append("  (none)")
    lines += ["", "Trusted signers:"]
    for signer in settings.signers:
        lines.append(f"  {signer.kind} {signer.name!r}  ({signer.source})")
        if signer.service_index is not None:
            lines.append(f"    serviceIndex: {signer.service_index}")
        if signer.owners:
            lines.append(f"    owners: {';'.join(signer.owners)}")
        for cert in signer.certificates:
            flag = "allowUntrustedRoot" if cert.allow_untrusted_root else ""
            if cert.written_allow_untrusted_root and not cert.allow_untrusted_root:
                flag = "allowUntrustedRoot ignored"
            if not cert.usable:
                flag = "not usable: NuGet cannot match with this hash algorithm"
            lines.append(
                f"    {cert.hash_algorithm} {cert.written_fingerprint}" + (f"  [{flag}]" if flag else "") + f"  ({cert.source})"
            )
    if not settings.signers:
        lines.append("  (none)")
    if settings.rules:
        lines += ["", *_rules_text(settings.rules)]
    if settings.warnings:
        lines += ["", "Warnings:"]
        lines += [f"  {w.where}: {w.code}: {w.message}" for w in settings.warnings]
    return "\n".join(lines)


def _rules_text(rules: TrustRules) -> list[str]:
    lines = ["Trust policy (<trustPolicy>):"]
    for rule in rules.identities:
        lines.append(f"  identity {rule.name!r} [{rule.kind}]  ({rule.source})")
        if rule.subject:
            lines.append("    subject: " + " ".join(f'{name}="{value}"' for name, value in rule.subject))
        for oid in rule.ekus:
            lines.append(f"    eku: {oid}")
        for pin in rule.issuers:
            lines.append(f"    issuer CA: SHA256 {pin.fingerprint}  ({pin.source})")
        if not rule.issuers:
            lines.append("    issuer CA: (none: refused, a subject alone is no identity)")
    for scope in rules.scopes:
        lines.append(f"  scope of {scope.signer!r}: {', '.join(scope.patterns)}  ({scope.source})")
    for exception in rules.exceptions:
        lines.append(f"  exception {exception.package_id} {exception.versions.text}: expires {exception.expires.isoformat()}, "
                     f"{exception.reason}  ({exception.source})")
    return lines
