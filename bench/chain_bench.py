"""Micro-benchmark of ChainValidator on a real nuget.org chain (not a test; run by hand).

    .venv/bin/python bench/chain_bench.py [N]

Validates the author signer of nuget.versioning.5.0.0.nupkg (Microsoft Corporation <- DigiCert SHA2
Assured ID Code Signing CA <- DigiCert Assured ID Root CA, bundled .NET SDK roots, revocation off)
N times and prints the per-call cost of: a full validation (result cache cleared before each call),
a cached one (same chain, a different moment inside the validity window each time, as 1,000 packages
signed by the same certificate are), and for contrast the naive pyhanko use (a new
ValidationContext with the 305 roots per call; fewer iterations, it is slow).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import zipfile
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PACKAGE = ROOT / "tests" / "data" / "nuget-client" / "signed" / "nuget.versioning.5.0.0.nupkg"  # tests/data/README.md


def main(n: int = 1000) -> None:
    start = time.perf_counter()
    from pyhanko_certvalidator import CertificateValidator, ValidationContext

    from trustpolicy._internal.chain import ChainValidator
    from trustpolicy._internal.revocation import RevocationOptions
    from trustpolicy._internal.signature import parse_signature
    from trustpolicy._internal.truststore import TrustStore

    print(f"imports                      {1000 * (time.perf_counter() - start):8.1f} ms")

    with zipfile.ZipFile(PACKAGE) as archive:
        signature = parse_signature(archive.read(".signature.p7s"))
    leaf, certs = signature.signer_certificate, signature.certificates
    moment = signature.timestamps[0].upper_limit
    assert leaf is not None and moment is not None

    start = time.perf_counter()
    store = TrustStore.bundled()
    print(f"load bundled roots           {1000 * (time.perf_counter() - start):8.1f} ms  ({store.description})")

    validator = ChainValidator(store, RevocationOptions("off"))
    start = time.perf_counter()
    first = validator.validate(leaf, certs, moment=moment, purpose="code_signing")
    print(f"first validation (cold)      {1000 * (time.perf_counter() - start):8.1f} ms  -> {first.status}")
    assert first.status == "valid" and first.trusted

    start = time.perf_counter()
    for _ in range(n):
        validator.clear_cache()
        result = validator.validate(leaf, certs, moment=moment, purpose="code_signing")
    full = (time.perf_counter() - start) / n
    assert result.status == "valid"
    print(f"full validation   x{n:<5}    {1000 * full:8.3f} ms/call")

    validator.clear_cache()
    start = time.perf_counter()
    for i in range(n):
        result = validator.validate(leaf, certs, moment=moment + timedelta(minutes=i), purpose="code_signing")
    cached = (time.perf_counter() - start) / n
    assert result.status == "valid"
    print(f"cached (same cert) x{n:<5}   {1000 * cached:8.4f} ms/call  {validator.stats}")

    with tempfile.TemporaryDirectory() as cache:
        offline = ChainValidator(store, RevocationOptions("offline", cache_dir=Path(cache)))
        offline.validate(leaf, certs, moment=moment, purpose="code_signing")  # builds the trust manager
        start = time.perf_counter()
        for _ in range(n):
            offline.clear_cache()
            result = offline.validate(leaf, certs, moment=moment, purpose="code_signing")
        revocation = (time.perf_counter() - start) / n
        offline.close()
    assert result.revocation == "unknown"
    print(f"full, offline revocation x{n:<5} {1000 * revocation:6.3f} ms/call  (no data: 'unknown')")

    naive_n = max(1, min(n, 20))
    intermediates = [c for c in certs if c.sha256 != leaf.sha256]
    start = time.perf_counter()
    for _ in range(naive_n):
        context = ValidationContext(trust_roots=store.code_signing, moment=moment)
        asyncio.run(CertificateValidator(leaf, intermediates, validation_context=context).async_validate_path())
    naive = (time.perf_counter() - start) / naive_n
    print(f"naive pyhanko     x{naive_n:<5}    {1000 * naive:8.3f} ms/call  (new ValidationContext per call)")
    validator.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
