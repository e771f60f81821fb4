"""`<trustPolicy>` exceptions: one package id and version range allowed although unsigned or
untrusted, for a stated reason, until a date (docs/identity.md).

The verifier consults them only for a package that fails without them, and judges it again with the
exception in force: unsigned is allowed, no allow list has to match, and an untrusted root (or a
certificate that had expired when it signed) is tolerated as with allowUntrustedRoot. Nothing else is:
a package whose content does not match its signature, whose signature does not verify or whose
certificate is revoked stays refused. An exception that applies is "used" and reported (TP2004, and
TP2003 within 14 days of its expiry); an expired one no longer applies and is reported (TP2002).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from trustpolicy._internal.config.rules import PackageException
from trustpolicy._internal.graph.versions import try_parse_version
from trustpolicy.codes import Code
from trustpolicy.models import ExceptionUse, Issue, Level, Status, StepResult

__all__ = ["Exceptions"]


@dataclass(frozen=True)
class Exceptions:
    """The exceptions in force for one run."""

    items: tuple[PackageException, ...] = ()

    @classmethod
    def of(cls, items: Iterable[PackageException]) -> Exceptions:
        return cls(tuple(items))

    def __bool__(self) -> bool:
        return bool(self.items)

    def matching(self, package_id: str | None, version: str | None) -> list[PackageException]:
        """The exceptions naming this package version (id ignoring case), whatever their date."""
        parsed = try_parse_version(version) if version else None
        if package_id is None or parsed is None:
            return []
        return [e for e in self.items if e.package_id.lower() == package_id.lower() and parsed in e.versions]

    def lookup(self, package_id: str | None, version: str | None, at: datetime) -> tuple[PackageException | None, PackageException | None]:
        """(the exception that applies at `at`, else the most recently expired one that would have)."""
        found = self.matching(package_id, version)
        active = [e for e in found if not e.expired(at)]
        if active:
            return max(active, key=lambda e: e.expires), None
        return None, max(found, key=lambda e: e.expires, default=None)


def used_step(exception: PackageException, package_id: str, version: str, at: datetime) -> StepResult:
    """The step recording that `exception` allowed the package: TP2004, plus TP2003 near its expiry."""
    where = f"{exception.source}"
    issues = [Issue(Code.TP2004, Level.INFO,
                    f"{package_id} {version} is allowed only by the exception for {exception.package_id} "
                    f"{exception.versions.text} ({exception.reason}; {where}), which expires on "
                    f"{exception.expires.isoformat()}.")]
    if exception.expiring(at):
        days = max(0, (exception.expires_at - at).days)
        issues.append(Issue(Code.TP2003, Level.WARNING,
                            f"The exception that allows {package_id} {version} expires on "
                            f"{exception.expires.isoformat()}, in {days} day{'s' if days != 1 else ''} ({where}): "
                            f"{exception.reason}."))
    return StepResult("exception", Status.VALID, tuple(issues))


def expired_step(exception: PackageException, package_id: str, version: str) -> StepResult:
    """The step recording that the exception that would have allowed the package has expired (TP2002)."""
    issue = Issue(Code.TP2002, Level.ERROR,
                  f"{package_id} {version} would be allowed by the exception for {exception.package_id} "
                  f"{exception.versions.text} ({exception.reason}), but it expired on {exception.expires.isoformat()} "
                  f"({exception.source}) and no longer applies.")
    return StepResult("exception", Status.DISALLOWED, (issue,))


def use_of(exception: PackageException) -> ExceptionUse:
    return ExceptionUse(exception.package_id, exception.versions.text, exception.expires.isoformat(), exception.reason,
                        exception.source)
