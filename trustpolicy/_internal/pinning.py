"""`init`: the trustedSigners entries that pin the signers a restored graph uses today.

The graph is judged by the same engine as `check` (a TrustContext in require mode): a package is
pinned only through the suggestions `check` would make, each checked before it is written, so the
policy `init` writes is one the same graph passes. A package that fails for another reason
(unsigned, changed since it was signed or restored, not found) teaches nothing and is skipped with
its reason. A signer whose chain ends in a root no trust store trusts is pinned with
allowUntrustedRoot="true" only when asked (`untrusted_roots`); otherwise it is refused, saying why.
The result is meant for review before it is committed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from trustpolicy._internal.config import load_trust_settings
from trustpolicy._internal.config.edit import ConfigEditor, Node, certificate_node, signer_node
from trustpolicy._internal.explain import with_signers
from trustpolicy.check import CheckOptions, check_graph, config_directory
from trustpolicy.context import TrustContext, TrustOptions
from trustpolicy.models import Refusal, Suggestion

__all__ = ["Pins", "collect_pins", "init_context", "write_pins"]


@dataclass(frozen=True)
class Pins:
    """What `init` found.

    suggestions: entries to add (`replaces` None) or existing entries to edit (`replaces` set);
    refusals: signers that may not be pinned, with the reason; skipped: "Id Version: why" of the
    packages no signer can allow; allowed: packages the target's entries allow already.
    """

    suggestions: tuple[Suggestion, ...]
    refusals: tuple[Refusal, ...]
    skipped: tuple[str, ...]
    allowed: tuple[str, ...]

    @property
    def entries(self) -> tuple[Suggestion, ...]:
        return tuple(s for s in self.suggestions if s.replaces is None)

    @property
    def edits(self) -> tuple[Suggestion, ...]:
        return tuple(s for s in self.suggestions if s.replaces is not None)

    @property
    def complete(self) -> bool:
        """Every signed package that is intact is allowed once the entries are added."""
        return not self.refusals and not self.edits

    def nodes(self) -> list[Node]:
        return [_node(entry) for entry in self.entries]

    def xml(self) -> str:
        return Node("trustedSigners", children=self.nodes()).render("", "  ", "\n") + "\n"


def init_context(paths: Iterable[str | os.PathLike[str]], options: TrustOptions) -> TrustContext:
    """The context `init` judges in: require mode; the trustedSigners of `options.configfile` when that
    file exists (it is extended), else none at all (the section is written from scratch). Packages are
    found as `check` finds them without --configfile: the file written is not where restore looked."""
    paths = list(paths) or ["."]
    target = options.configfile
    context = TrustContext.build(replace(options, mode="require", configfile=None,
                                         directory=options.directory or config_directory(paths[0])))
    signers = load_trust_settings(configfile=target).signers if target is not None and Path(target).is_file() else ()
    return with_signers(context, signers)


def collect_pins(
    paths: Iterable[str | os.PathLike[str]],
    context: TrustContext,
    *,
    packages_dirs: tuple[str, ...] = (),
    untrusted_roots: bool = False,
) -> Pins:
    """Judge the graph under `context` and turn its suggestions into pins."""
    options = CheckOptions(packages_dirs=packages_dirs, use_cache=False, untrusted_roots=untrusted_roots)
    report = check_graph([str(p) for p in paths] or ["."], context, options)
    covered = {name for suggestion in report.suggestions for name in suggestion.packages}
    refused = {name for refusal in report.refusals for name in refusal.packages}
    skipped, allowed = [], []
    for package in report.packages:
        name = f"{package.id} {package.version}"
        if package.passed:
            allowed.append(name)
        elif name not in covered and name not in refused:
            skipped.append(f"{name}: {package.cause or 'it does not pass verification'}")
    return Pins(report.suggestions, report.refusals, tuple(skipped), tuple(allowed))


def write_pins(pins: Pins, configfile: str | os.PathLike[str]) -> list[str]:
    """Add the new entries to `configfile` (created when missing; everything else in it is kept);
    returns the names added. Existing entries are never changed here: `pins.edits` says how."""
    if not pins.entries:
        return []
    editor = ConfigEditor(Path(configfile))
    for entry in pins.entries:
        editor.add_signer(_node(entry))
    editor.save()
    return [entry.name for entry in pins.entries]


def _node(entry: Suggestion) -> Node:
    certificates = [certificate_node(fp, "SHA256", fp in entry.untrusted_roots) for fp in entry.fingerprints]
    return signer_node(entry.kind, entry.name, certificates, entry.service_index, ";".join(entry.owners) or None)
