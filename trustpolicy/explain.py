"""One line of cause and, where one exists, the command that would allow a failing package.

Works on report entries (the JSON package shape), so it explains cached results as well.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

# signature.distinguished_name: "CN=Contoso Ltd, O=Contoso, C=US" (a quoted value may hold commas)
_CN = re.compile(r'(?:^|,\s*)CN=("(?:[^"]|"")*"|[^,]+)')


def explain(entry: dict[str, Any], *, mode: str, configfile: str | None = None) -> tuple[str | None, str | None]:
    """(cause, fix) for an invalid package; (None, None) for a valid one."""
    if entry.get("verdict") == "valid":
        return None, None
    errors = [i for i in entry.get("issues", []) if i.get("level") == "error"] or entry.get("issues", [])
    codes = [i.get("code") for i in errors]
    name = f"{entry.get('id')} {entry.get('version')}"
    first = errors[0]["message"] if errors else "the package did not pass verification"

    if "TP0001" in codes:
        return f"{name} is in the graph but its .nupkg was not found", "run the restore again, or pass --packages-dir"
    if "TP0002" in codes or "NU3008" in codes:
        return (
            f"{name} on disk is not the package that was restored or signed: {first}",
            "delete the package folder and restore it again from a trusted source; investigate how it changed",
        )
    if "TP0003" in codes:
        return first, None
    if "NU3004" in codes:
        return f"{name} is unsigned and {mode} mode allows only signed packages", None
    if "NU3034" in codes or "NU3018" in codes:
        return first, _trust_command(entry, untrusted_root="NU3018" in codes, configfile=configfile)
    return first, None


def _trust_command(entry: dict[str, Any], *, untrusted_root: bool, configfile: str | None) -> str | None:
    """`trustpolicy trust author|repository NAME PACKAGE ...` for the package's own signer."""
    path = entry.get("path")
    signatures = entry.get("signatures", [])
    if not path or not signatures:
        return None
    repository = next((s for s in signatures if s.get("kind") == "repository"), None)
    signer = repository or signatures[0]
    if signer.get("kind") not in ("author", "repository"):
        return None
    words = ["trustpolicy", "trust", signer["kind"], signer_name(signer), str(path)]
    if repository is not None and repository.get("owners"):
        words += ["--owners", ";".join(repository["owners"])]
    if untrusted_root:
        words.append("--allow-untrusted-root")
    if configfile:
        words += ["--configfile", configfile]
    return " ".join(shlex.quote(word) for word in words)


def signer_name(signature: dict[str, Any]) -> str:
    """A readable trustedSigners name: the certificate's common name, else the service index host."""
    match = _CN.search(signature.get("subject") or "")
    if match:
        value = match.group(1).strip()
        return value[1:-1].replace('""', '"') if value.startswith('"') else value
    return signature.get("serviceIndex") or "signer"
