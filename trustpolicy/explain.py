"""One line of cause and, where one exists, the command that would allow a failing package.

Works on verdicts, so cached verdicts are explained the same way as fresh ones.
"""

from __future__ import annotations

import re
import shlex

from trustpolicy.codes import Code
from trustpolicy.models import Level, PackageVerdict, SignatureReport

# signature.distinguished_name: "CN=Contoso Ltd, O=Contoso, C=US" (a quoted value may hold commas)
_CN = re.compile(r'(?:^|,\s*)CN=("(?:[^"]|"")*"|[^,]+)')


def explain(
    verdict: PackageVerdict, package_id: str, version: str, *, mode: str, configfile: str | None = None
) -> tuple[str | None, str | None]:
    """(cause, fix) for an invalid package; (None, None) for a valid one."""
    if verdict.passed:
        return None, None
    errors = [i for i in verdict.issues if i.level is Level.ERROR] or list(verdict.issues)
    codes = {i.code for i in errors}
    name = f"{package_id} {version}"
    first = errors[0].message if errors else "the package did not pass verification"

    if Code.TP0001 in codes:
        return f"{name} is in the graph but its .nupkg was not found", "run the restore again, or pass --packages-dir"
    if Code.TP0002 in codes or Code.NU3008 in codes:
        return (
            f"{name} on disk is not the package that was restored or signed: {first}",
            "delete the package folder and restore it again from a trusted source; investigate how it changed",
        )
    if Code.TP0003 in codes:
        return first, None
    if Code.TP2002 in codes:  # the exception that would have allowed it has expired: that is the news
        return next(i.message for i in errors if i.code == Code.TP2002), None
    if Code.NU3004 in codes:
        return f"{name} is unsigned and {mode} mode allows only signed packages", None
    if Code.NU3034 in codes or Code.NU3018 in codes:
        return first, _trust_command(verdict, untrusted_root=Code.NU3018 in codes, configfile=configfile)
    return first, None


def _trust_command(verdict: PackageVerdict, *, untrusted_root: bool, configfile: str | None) -> str | None:
    """`trustpolicy trust author|repository NAME PACKAGE ...` for the package's own signer."""
    if not verdict.path or not verdict.signatures:
        return None
    repository = next((s for s in verdict.signatures if s.kind == "repository"), None)
    signer = repository or verdict.signatures[0]
    if signer.kind not in ("author", "repository"):
        return None
    words = ["trustpolicy", "trust", signer.kind, signer_name(signer), verdict.path]
    if repository is not None and repository.owners:
        words += ["--owners", ";".join(repository.owners)]
    if untrusted_root:
        words.append("--allow-untrusted-root")
    if configfile:
        words += ["--configfile", configfile]
    return " ".join(shlex.quote(word) for word in words)


def signer_name(signature: SignatureReport) -> str:
    """A readable trustedSigners name: the certificate's common name, else the service index host."""
    return common_name(signature.subject or "") or signature.service_index or "signer"


def common_name(subject: str) -> str | None:
    """The CN of a distinguished name as signature.distinguished_name writes it, unquoted."""
    match = _CN.search(subject)
    if not match:
        return None
    value = match.group(1).strip()
    return value[1:-1].replace('""', '"') if value.startswith('"') else value
