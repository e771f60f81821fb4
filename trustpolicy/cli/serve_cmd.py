"""`trustpolicy serve`: a NuGet V3 feed that serves only the packages the policy allows."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from trustpolicy.cli.options import add_trust_options, trust_options
from trustpolicy.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run a NuGet feed that verifies every package before a client gets it",
        description="Serve each upstream feed at /feeds/NAME/v3/index.json. Every .nupkg is downloaded from its "
        "upstream, verified with the NuGet.Config policy (as `check` does) and served, or refused with HTTP 403 "
        "and a reason NuGet clients print. Stops on SIGTERM or Ctrl+C; SIGHUP (or an edit of the config "
        "files) reloads the policy.",
    )
    parser.add_argument("--listen", metavar="HOST:PORT", default="127.0.0.1:5555",
                        help="address to listen on (default: 127.0.0.1:5555; port 0 picks a free one)")
    parser.add_argument("--upstream", metavar="NAME=URL", action="append", default=[],
                        help="serve this V3 service index or local folder as feed NAME (repeatable; default: "
                             "the packageSources of the NuGet.Config)")
    parser.add_argument("--mode", choices=("accept", "require", "audit"),
                        help="override signatureValidationMode; audit serves every package and logs what "
                             "require would refuse")
    add_trust_options(parser)
    parser.add_argument("--cache-dir", metavar="DIR", help="package and verdict cache (default: the per-user cache folder)")
    parser.add_argument("--audit-log", metavar="FILE", help="append one JSON line per package decision to FILE")
    parser.add_argument("--tls-cert", metavar="PEM", help="serve https with this certificate (chain) ...")
    parser.add_argument("--tls-key", metavar="PEM", help="... and this private key")
    parser.add_argument("--public-url", metavar="URL",
                        help="the gate's address as clients reach it (default: the Host they ask for)")
    parser.add_argument("--allow-host", metavar="HOST", action="append", default=[],
                        help="an extra host upstream downloads may come from or redirect to (e.g. a CDN; repeatable)")
    parser.add_argument("--upstream-timeout", metavar="SECONDS", type=float, default=30.0,
                        help="connect and read timeout, and the limit for one metadata document (default: 30)")
    parser.add_argument("--download-timeout", metavar="SECONDS", type=float, default=600.0,
                        help="limit for downloading one package (default: 600)")
    parser.add_argument("--max-package-size", metavar="MB", type=float, default=250.0,
                        help="largest package accepted from an upstream, in MB (default: 250)")
    parser.add_argument("--workers", metavar="N", type=int, help="verification worker processes (default: 2)")
    parser.add_argument("--verify-timeout", metavar="SECONDS", type=float, default=300.0,
                        help="longest one verification may take; its worker is then stopped (default: 300)")
    parser.add_argument("--reload-interval", metavar="SECONDS", type=float, default=2.0,
                        help="how often the config files are checked for edits (default: 2; 0: only on SIGHUP)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from trustpolicy.serve.app import ServeOptions, serve
    from trustpolicy.serve.upstream import Limits

    host, port = parse_listen(args.listen)
    if args.public_url is not None and not args.public_url.lower().startswith(("http://", "https://")):
        raise UsageError("--public-url must be an http:// or https:// URL")
    for name, value in (("--upstream-timeout", args.upstream_timeout), ("--download-timeout", args.download_timeout),
                        ("--max-package-size", args.max_package_size), ("--verify-timeout", args.verify_timeout)):
        if not value > 0:
            raise UsageError(f"{name} must be more than 0")
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    cache_dir = Path(args.cache_dir) if args.cache_dir else _default_cache()
    options = ServeOptions(
        trust=trust_options(args, mode=args.mode, directory=os.getcwd(), cache_dir=str(cache_dir)),
        cache_dir=cache_dir,
        host=host,
        port=port,
        upstreams=tuple(parse_upstream(text) for text in args.upstream),
        audit_log=args.audit_log,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        public_url=args.public_url.rstrip("/") if args.public_url else None,
        limits=Limits(timeout=args.upstream_timeout, download_timeout=args.download_timeout,
                      max_package=int(args.max_package_size * 1024 * 1024)),
        workers=args.workers or min(2, os.cpu_count() or 1),
        verify_timeout=args.verify_timeout,
        allow_hosts=tuple(args.allow_host),
        reload_interval=args.reload_interval,
    )
    return serve(options)


def parse_listen(text: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen must be HOST:PORT, e.g. 127.0.0.1:5555 (got {text!r})")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host:
        raise UsageError(f"--listen needs a host, e.g. 127.0.0.1:{port}")
    return host, int(port)


def parse_upstream(text: str) -> tuple[str, str]:
    name, equals, location = text.partition("=")
    if not equals or not name.strip() or not location.strip():
        raise UsageError(f"--upstream must be NAME=URL or NAME=FOLDER (got {text!r})")
    return name.strip(), location.strip()


def _default_cache() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("trustpolicy")) / "serve"
