"""`trustpolicy init [PATH...]`: pin the signers the restored graph uses today."""

from __future__ import annotations

import argparse
import shlex
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "init",
        help="write a trustedSigners section pinning the graph's current signers",
        description="Collect the author and repository signers of every package in the graph and write "
        "a trustedSigners section that trusts exactly them (authors by certificate, repositories by "
        "service index with their certificates and the owners seen). Without --configfile the XML is "
        "printed for review; with it, the entries are added to that file (created if missing).",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="graph inputs (default: the current folder)")
    parser.add_argument("--configfile", metavar="FILE", help="add the entries to this NuGet.Config")
    parser.add_argument("--packages-dir", metavar="DIR", action="append", default=[],
                        help="look for packages in this folder as well (repeatable)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from trustpolicy.pinning import collect_pins, write_pins

    pins = collect_pins(args.paths or ["."], packages_dirs=tuple(args.packages_dir))
    for note in pins.skipped:
        print(f"skipped {note}", file=sys.stderr)
    for name, package in pins.identities.items():
        print(f"author {name!r} signs with short-lived certificates (a Trusted Signing identity): pin its identity "
              f"with: {shlex.join(['trustpolicy', 'trust', 'author', name, '--identity-from', package])}", file=sys.stderr)
    if not pins.signers and pins.identities:
        return 0
    if not pins.signers:
        print("trustpolicy: no signed package in the graph: nothing to pin", file=sys.stderr)
        return 1
    if not args.configfile:
        sys.stdout.write(pins.xml())
        return 0
    added = write_pins(pins, args.configfile)
    for signer in pins.signers:
        state = "added" if signer.name in added else "already present"
        print(f"{signer.kind} {signer.name!r}: {len(signer.fingerprints)} certificate(s), "
              f"{signer.packages} package(s) - {state}")
    print(f"review {args.configfile}, then set signatureValidationMode to require")
    return 0
