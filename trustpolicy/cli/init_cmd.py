"""`trustpolicy init [PATH...]`: pin the signers the restored graph uses today.

Exit 0 when every signed, intact package of the graph is allowed by the entries written (or already
there); 1 when a signer could not be pinned (each says why) or an existing entry needs an edit by
hand; 2 for unusable input.
"""

from __future__ import annotations

import argparse
import sys

from trustpolicy._internal.verbosity import Verbosity
from trustpolicy.cli.options import add_trust_options, trust_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "init",
        help="write a trustedSigners section pinning the graph's current signers",
        description="Judge every package of the graph in require mode and pin its signer: the repository "
        "that signed or countersigned it (by service index, with its certificates and the owners seen), else "
        "its author (by certificate). Each entry is checked with the verification engine before it is written, "
        "so the graph passes the policy written. Packages that fail for another reason (unsigned, changed since "
        "signing or restore, not found) are skipped with the reason. A signer whose certificate chain ends in "
        "a root no trust store trusts is pinned only with --allow-untrusted-root. Without --configfile the XML "
        "is printed for review; with it, the entries are added to that file (created if missing).",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="graph inputs (default: the current folder)")
    parser.add_argument("--configfile", metavar="FILE",
                        help="add the entries to this NuGet.Config, judging with the trusted signers it has already")
    parser.add_argument("--packages-dir", metavar="DIR", action="append", default=[],
                        help="look for packages in this folder as well (repeatable)")
    parser.add_argument("--allow-untrusted-root", action="store_true",
                        help="pin a signer whose chain ends in an untrusted root with allowUntrustedRoot=\"true\" "
                        "(trusts that certificate with no authority behind it; prefer --extra-roots)")
    add_trust_options(parser, configfile=False)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from trustpolicy._internal.pinning import collect_pins, init_context, write_pins

    paths = args.paths or ["."]
    context = init_context(paths, trust_options(args, configfile=args.configfile))
    pins = collect_pins(paths, context, packages_dirs=tuple(args.packages_dir),
                        untrusted_roots=args.allow_untrusted_root)
    verbosity = args.verbosity

    def note(text: str, level: Verbosity = Verbosity.MINIMAL) -> None:
        if verbosity >= level:
            print(text, file=sys.stderr)

    for line in pins.skipped:
        note(f"skipped {line}", Verbosity.NORMAL)
    for refusal in pins.refusals:
        note(f"not pinned: {refusal.kind} {refusal.name!r} ({', '.join(refusal.packages)}): {refusal.reason}")
    for entry in pins.entries:
        if entry.untrusted_roots:
            note(f"WARNING: {entry.kind} {entry.name!r} is pinned with allowUntrustedRoot=\"true\": its chain ends "
                 "in a root no trust store here trusts, so only this certificate stands behind its packages",
                 Verbosity.QUIET)
    for edit in pins.edits:
        note(f"{edit.kind} {edit.name!r} at {edit.replaces} does not allow {', '.join(edit.packages)}; "
             f"edit it to read:\n{edit.xml}", Verbosity.QUIET)
    if not pins.entries:
        if pins.refusals:
            note("trustpolicy: nothing pinned: no signer could be pinned (see above)", Verbosity.QUIET)
            return 1
        if not pins.allowed:
            note("trustpolicy: nothing to pin: no signed, intact package that a trusted signer could allow",
                 Verbosity.QUIET)
            return 1
        note(f"nothing to add: {len(pins.allowed)} package(s) already allowed")
        return 0 if pins.complete else 1
    if not args.configfile:
        sys.stdout.write(pins.xml())
        return 0 if pins.complete else 1
    write_pins(pins, args.configfile)
    if verbosity >= Verbosity.MINIMAL:
        for entry in pins.entries:
            described = f" {entry.service_index}" if entry.service_index else ""
            owners = f" owners {';'.join(entry.owners)}" if entry.owners else ""
            print(f"added {entry.kind} {entry.name!r}{described}{owners}: {len(entry.fingerprints)} certificate(s), "
                  f"{len(entry.packages)} package(s)")
            if verbosity >= Verbosity.DETAILED:
                for name in entry.packages:
                    print(f"  {name}")
        print(f"review {args.configfile}, then set signatureValidationMode to require")
    return 0 if pins.complete else 1
