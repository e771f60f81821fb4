"""`trustpolicy trust`: manage trustedSigners like `dotnet nuget trust` (same verbs and options).

Without a verb it lists. Every verb takes --configfile; without it the config hierarchy of the
current directory is used and new entries go where NuGet would write them.
"""

from __future__ import annotations

import argparse

from trustpolicy._internal.config import trust
from trustpolicy._internal.config.sources import DEFAULT_TIMEOUT
from trustpolicy.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("trust", help="manage trusted signers in NuGet.Config (like dotnet nuget trust)")
    _configfile(parser)
    parser.set_defaults(func=run, trust_verb="list")
    verbs = parser.add_subparsers(dest="trust_verb", metavar="VERB")

    _configfile(verbs.add_parser("list", help="list the trusted signers"))

    author = verbs.add_parser("author", help="trust the author who signed PACKAGE")
    author.add_argument("name")
    author.add_argument("package", nargs="?", help="a signed .nupkg (its certificate is pinned)")
    author.add_argument("--identity-from", metavar="PACKAGE",
                        help="write a <trustPolicy> identity rule from this signed package instead (subject or "
                        "Trusted Signing identity EKU, and its issuing CA): it survives certificate renewals")
    author.add_argument("--extra-roots", metavar="PEM", action="append", default=[],
                        help="with --identity-from: roots to trust besides the bundled ones (repeatable)")
    author.add_argument("--trust-store", metavar="PEM", action="append", default=[],
                        help="with --identity-from: roots replacing the bundled ones (repeatable)")
    _untrusted_root(author)
    _configfile(author)

    repository = verbs.add_parser("repository", help="trust the repository that signed or countersigned PACKAGE")
    repository.add_argument("name")
    repository.add_argument("package", help="a repository-signed or countersigned .nupkg")
    _untrusted_root(repository)
    _owners(repository)
    _configfile(repository)

    certificate = verbs.add_parser("certificate", help="trust a certificate fingerprint (adds to signer NAME or creates an author)")
    certificate.add_argument("name")
    certificate.add_argument("fingerprint")
    certificate.add_argument(
        "--algorithm", default="SHA256", type=str.upper, choices=("SHA256", "SHA384", "SHA512"), help="fingerprint hash algorithm (default SHA256)"
    )
    _untrusted_root(certificate)
    _configfile(certificate)

    source = verbs.add_parser("source", help="trust every certificate a V3 package source announces")
    source.add_argument("name", help="a configured package source, or the name to give the entry with --source-url")
    _owners(source)
    source.add_argument("--source-url", metavar="URL", help="the source's V3 service index (default: the configured source NAME)")
    _network(source)
    _configfile(source)

    sync = verbs.add_parser("sync", help="refresh a repository's certificates from its service index")
    sync.add_argument("name")
    _network(sync)
    _configfile(sync)

    remove = verbs.add_parser("remove", help="remove every trusted signer named NAME")
    remove.add_argument("name")
    _configfile(remove)


def _configfile(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--configfile", metavar="FILE", default=argparse.SUPPRESS, help="the NuGet.Config to read and change")


def _untrusted_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-untrusted-root", action="store_true", help="accept this certificate even if its root is not trusted")


def _owners(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--owners", metavar="LIST", help="';'-separated package owners to require (repositories only)")


def _network(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="show the changes, write nothing")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help=f"seconds per request (default {DEFAULT_TIMEOUT:g})")


def _author(scope: trust.Scope, args: argparse.Namespace) -> trust.Outcome:
    if args.identity_from is None:
        if args.package is None:
            raise UsageError("trust author needs a PACKAGE, or --identity-from PACKAGE for an identity rule")
        if args.extra_roots or args.trust_store:
            raise UsageError("--extra-roots and --trust-store go with --identity-from")
        return trust.add_author(scope, args.name, args.package, allow_untrusted_root=args.allow_untrusted_root)
    if args.package is not None:
        raise UsageError("give the package once: either PACKAGE or --identity-from PACKAGE")
    if args.allow_untrusted_root:
        raise UsageError("--allow-untrusted-root cannot go with --identity-from: identity rules need a trusted chain")
    from trustpolicy._internal.truststore import TrustStore

    store = TrustStore.from_files(args.trust_store, extra=args.extra_roots)
    return trust.add_identity(scope, args.name, args.identity_from, trust_store=store)


def run(args: argparse.Namespace) -> int:
    scope = trust.Scope(configfile=getattr(args, "configfile", None))
    verb = args.trust_verb or "list"
    if verb == "list":
        outcome = trust.list_signers(scope)
    elif verb == "author":
        outcome = _author(scope, args)
    elif verb == "repository":
        outcome = trust.add_repository(
            scope, args.name, args.package, allow_untrusted_root=args.allow_untrusted_root, owners=args.owners
        )
    elif verb == "certificate":
        outcome = trust.add_certificate(
            scope, args.name, args.fingerprint, algorithm=args.algorithm, allow_untrusted_root=args.allow_untrusted_root
        )
    elif verb == "source":
        outcome = trust.add_source(
            scope, args.name, source_url=args.source_url, owners=args.owners, dry_run=args.dry_run, timeout=args.timeout
        )
    elif verb == "sync":
        outcome = trust.sync(scope, args.name, dry_run=args.dry_run, timeout=args.timeout)
    else:
        outcome = trust.remove(scope, args.name)
    for line in outcome.lines:
        print(line)
    return 0
