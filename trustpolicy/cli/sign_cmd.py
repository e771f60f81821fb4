"""`trustpolicy sign`: author-sign (or repository-sign / countersign) packages, like `dotnet nuget sign`.

The certificate comes from a PKCS#12 file (.pfx/.p12, with --certificate-password) or from PEM:
the certificate file (chain certificates after it go into the signature too) plus --key.
Warnings (NU3002 without --timestamper) go to stderr; each signed file is printed on stdout.
Verbosity: quiet prints errors only; detailed also says who signs and how (certificate, hashes,
timestamp server).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trustpolicy._internal.sign import (
    DEFAULT_TIMESTAMP_TIMEOUT,
    HASH_ALGORITHMS,
    RepositoryOptions,
    SigningIdentity,
    sign_package,
)
from trustpolicy._internal.verbosity import Verbosity
from trustpolicy.errors import UsageError
from trustpolicy.models import Issue


def _hash_choice(value: str) -> str:
    name = value.strip().lower().replace("-", "")
    if name not in HASH_ALGORITHMS:
        raise argparse.ArgumentTypeError(f"{value!r} is not one of SHA256, SHA384, SHA512")
    return name


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sign",
        help="sign packages (author signature; repository signature or countersignature with --repository)",
        description="Sign .nupkg files. Options are named as in `dotnet nuget sign`.",
    )
    parser.add_argument("packages", nargs="+", metavar="PACKAGE", help=".nupkg files to sign")
    parser.add_argument("--certificate-path", required=True, metavar="FILE",
                        help="PKCS#12 (.pfx/.p12) file, or PEM certificate(s) used with --key")
    parser.add_argument("--certificate-password", metavar="PASSWORD",
                        help="password of the PKCS#12 file (or of the PEM key)")
    parser.add_argument("--key", metavar="FILE", help="PEM private key for a PEM --certificate-path")
    parser.add_argument("--timestamper", metavar="URL", help="RFC 3161 timestamp server URL")
    parser.add_argument("--timestamp-hash-algorithm", type=_hash_choice, default="sha256", metavar="ALG",
                        help="SHA256 (default), SHA384 or SHA512")
    parser.add_argument("--timestamp-timeout", type=float, default=DEFAULT_TIMESTAMP_TIMEOUT, metavar="SECONDS",
                        help=f"timestamp request timeout (default {DEFAULT_TIMESTAMP_TIMEOUT:g})")
    parser.add_argument("--hash-algorithm", type=_hash_choice, default="sha256", metavar="ALG",
                        help="SHA256 (default), SHA384 or SHA512")
    parser.add_argument("-o", "--output-directory", metavar="DIR",
                        help="write signed packages here (default: sign in place)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing signature")
    parser.add_argument("--repository", action="store_true",
                        help="make a repository signature (countersignature on an author-signed package)")
    parser.add_argument("--service-index", metavar="URL", help="repository V3 service index (https), with --repository")
    parser.add_argument("--owners", metavar="'A;B'", help="package owners, separated by ';', with --repository")
    parser.set_defaults(func=run)


def _identity(args: argparse.Namespace) -> SigningIdentity:
    path = Path(args.certificate_path)
    if args.key:
        return SigningIdentity.from_pem(path, args.key, args.certificate_password)
    if path.suffix.lower() in (".pfx", ".p12"):
        return SigningIdentity.from_pkcs12(path, args.certificate_password)
    try:
        head = path.read_bytes()[:4096]
    except OSError as exc:
        raise UsageError(f"cannot read the certificate: {exc.strerror or exc}", path=str(path)) from exc
    if b"-----BEGIN" in head:
        return SigningIdentity.from_pem(path, None, args.certificate_password)  # key in the same file
    return SigningIdentity.from_pkcs12(path, args.certificate_password)


def _repository(args: argparse.Namespace) -> RepositoryOptions | None:
    if not args.repository:
        if args.service_index or args.owners:
            raise UsageError("--service-index and --owners need --repository")
        return None
    if not args.service_index:
        raise UsageError("--repository needs --service-index URL")
    owners = tuple(o.strip() for o in (args.owners or "").split(";") if o.strip())
    return RepositoryOptions(args.service_index, owners)


def run(args: argparse.Namespace) -> int:
    repository = _repository(args)
    identity = _identity(args)
    output = Path(args.output_directory) if args.output_directory else None
    if output is not None:
        try:
            output.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the output directory: {exc.strerror or exc}", path=str(output)) from exc

    def warn(warning: Issue) -> None:
        if args.verbosity > Verbosity.QUIET:
            print(f"trustpolicy: warning: {warning.code}: {warning.where}: {warning.message}", file=sys.stderr)

    if args.verbosity >= Verbosity.DETAILED:
        from cryptography.hazmat.primitives import hashes

        certificate = identity.certificate
        print(f"signer: {certificate.subject.rfc4514_string()} "
              f"(SHA256 {certificate.fingerprint(hashes.SHA256()).hex().upper()}), "
              f"{len(identity.chain)} chain certificate(s)")
        kind = "repository countersignature or signature" if repository else "author signature"
        print(f"{kind}, hash {args.hash_algorithm}, timestamper {args.timestamper or 'none'}"
              + (f" ({args.timestamp_hash_algorithm})" if args.timestamper else ""))
    for package in args.packages:
        written = sign_package(
            package,
            identity=identity,
            output=output,
            hash_algorithm=args.hash_algorithm,
            timestamper=args.timestamper,
            timestamp_hash_algorithm=args.timestamp_hash_algorithm,
            timestamp_timeout=args.timestamp_timeout,
            overwrite=args.overwrite,
            repository=repository,
            on_warning=warn,
        )
        if args.verbosity > Verbosity.QUIET:
            print(f"signed {written}")
    return 0
