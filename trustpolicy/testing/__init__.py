"""Test infrastructure shipped with trustpolicy: a throw-away PKI and RFC 3161 timestamp servers.

Nothing here is used by the verifier itself. It lets tests (ours and downstream users') make real
certificates, CRLs, OCSP responses and timestamps on 127.0.0.1 instead of mocking them.
"""

from trustpolicy.testing.pki import Issued, TestPKI, make_crl, make_ocsp_response

__all__ = ["Issued", "TestPKI", "make_crl", "make_ocsp_response"]
