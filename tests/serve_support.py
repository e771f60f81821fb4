"""Builders for the `serve` tests (no tests here): the packages, the upstream feed, the gate as a
subprocess and a client that walks the V3 protocol the way NuGet does.

Everything is real: packages signed by the session's test PKI, a V3 feed on 127.0.0.1
(trustpolicy.testing.feed.FeedServer), `python -m trustpolicy serve` in its own process, HTTP over
sockets. The policy trusts the author Contoso and, through its owners, the repository that
countersigned Fabrikam's package; Northwind is a valid signer nobody trusts.
"""

from __future__ import annotations

import json
import os
import queue
import random
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import identity_of  # shared with the other suites
from cryptography.hazmat.primitives import hashes

from trustpolicy._internal.sign import RepositoryOptions, sign_package
from trustpolicy.testing.feed import FeedServer
from trustpolicy.testing.pki import Issued, TestPKI, write_certificates

REPOSITORY_INDEX = "https://test-feed.example/v3/index.json"
STARTUP_TIMEOUT = 60.0


# -- packages ------------------------------------------------------------------------------------------


def nupkg(path: Path, package_id: str, version: str, *, payload: bytes = b"",
          dependencies: tuple[tuple[str, str], ...] = ()) -> Path:
    """An unsigned package with a real manifest (and dependencies) and one assembly."""
    deps = "".join(f'<dependency id="{d}" version="{r}" />' for d, r in dependencies)
    nuspec = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd"><metadata>'
        f"<id>{package_id}</id><version>{version}</version><authors>{package_id.split('.')[0]}</authors>"
        f"<description>serve test package {package_id}</description>"
        + (f'<dependencies><group targetFramework="net8.0">{deps}</group></dependencies>' if deps else "")
        + "</metadata></package>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{package_id}.nuspec", nuspec)
        archive.writestr(f"lib/net8.0/{package_id}.dll", b"MZ" + f"{package_id} {version}".encode() * 64)
        if payload:
            archive.writestr(zipfile.ZipInfo("content/payload.bin"), payload)  # stored: size on disk is real
    return path


@dataclass
class ServeWorld:
    """The packages, the trust material and a config for the gate. `packages[key]` is a .nupkg path."""

    root: Path
    pki: TestPKI
    roots: Path  # PEM: the code-signing root and the TSA root (--trust-store)
    config: Path  # require mode: trusts Contoso (author) and the test feed (repository, owner test-team)
    packages: dict[str, Path] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)
    dependencies: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    def feed(self, **knobs: Any) -> FeedServer:
        """A started upstream serving every package of the world."""
        server = FeedServer(**knobs).start()
        for key, path in self.packages.items():
            server.add(path, self.dependencies.get(key, ()))
        return server

    def write_config(self, path: Path, *, mode: str = "require", trust_northwind: bool = False,
                     sources: dict[str, str] | None = None) -> Path:
        signers = [("author", "Contoso Ltd", self.fingerprints["contoso"], "")]
        if trust_northwind:
            signers.append(("author", "Northwind Traders", self.fingerprints["northwind"], ""))
        items = "".join(
            f'<{kind} name="{name}"><certificate fingerprint="{fp}" hashAlgorithm="SHA256" allowUntrustedRoot="false" />{extra}</{kind}>'
            for kind, name, fp, extra in signers
        )
        items += (f'<repository name="test-feed" serviceIndex="{REPOSITORY_INDEX}">'
                  f'<certificate fingerprint="{self.fingerprints["feed"]}" hashAlgorithm="SHA256" allowUntrustedRoot="false" />'
                  "<owners>test-team</owners></repository>")
        source_items = "".join(f'<add key="{k}" value="{v}" />' for k, v in (sources or {}).items())
        text = ('<?xml version="1.0" encoding="utf-8"?>\n<configuration>'
                f'<config><add key="signatureValidationMode" value="{mode}" /></config>'
                f"<packageSources><clear />{source_items}</packageSources>"
                f"<trustedSigners><clear />{items}</trustedSigners></configuration>\n")
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)  # an editor's save: readers never see half a file
        return path


def build_world(root: Path, pki: TestPKI) -> ServeWorld:
    signers: dict[str, Issued] = {
        "contoso": pki.issue_code_signing("Contoso Ltd"),
        "fabrikam": pki.issue_code_signing("Fabrikam Inc"),
        "northwind": pki.issue_code_signing("Northwind Traders"),
        "feed": pki.issue_code_signing("Test Feed Repository"),
    }
    roots = write_certificates(root / "roots.pem", [pki.root.certificate, pki.tsa_root.certificate])
    world = ServeWorld(root, pki, roots, root / "NuGet.Config")
    world.fingerprints = {name: issued.certificate.fingerprint(hashes.SHA256()).hex().upper()
                          for name, issued in signers.items()}
    quiet = {"on_warning": lambda warning: None}
    work = root / "packages"

    def make(key: str, package_id: str, version: str, how: str, **extra: Any) -> None:
        path = nupkg(work / f"{package_id}.{version}.nupkg", package_id, version, **extra)
        if how != "unsigned":
            sign_package(path, identity=identity_of(signers[how.split("+")[0]]), **quiet)
        if how.endswith("+feed"):
            sign_package(path, identity=identity_of(signers["feed"]), **quiet,
                         repository=RepositoryOptions(REPOSITORY_INDEX, ("fabrikam", "test-team")))
        world.packages[key] = path
        world.dependencies[key] = extra.get("dependencies", ())

    make("trusted", "Contoso.Lib", "1.2.0", "contoso")
    make("trusted-2", "Contoso.Lib", "2.0.0", "contoso")
    make("app", "Contoso.App", "1.0.0", "contoso", dependencies=(("Contoso.Lib", "1.2.0"),))
    make("countersigned", "Fabrikam.Json", "13.0.3", "fabrikam+feed")
    make("untrusted", "Northwind.Utils", "1.4.2", "northwind")
    make("unsigned", "Legacy.Unsigned", "1.0.0", "unsigned")
    make("tampered", "Contoso.Tampered", "3.0.0", "contoso")
    make("large", "Contoso.Large", "1.0.0", "contoso", payload=random.Random(7).randbytes(6 * 1024 * 1024))
    tamper(world.packages["tampered"])
    world.write_config(world.config)
    return world


def tamper(path: Path) -> None:
    """Change one byte of the assembly after signing (the signature no longer matches)."""
    with zipfile.ZipFile(path) as archive:
        dll = next(i for i in archive.infolist() if i.filename.endswith(".dll"))
    data = bytearray(path.read_bytes())
    data[dll.header_offset + 30 + len(dll.filename) + len(dll.extra) + 5] ^= 0x01
    path.write_bytes(bytes(data))


# -- the gate as a subprocess -------------------------------------------------------------------------------


class GateProcess:
    """`python -m trustpolicy serve ...` on a free port; `url` once it listens."""

    def __init__(self, args: list[str], *, cwd: Path, home: Path) -> None:
        self.args = args
        self.cwd = cwd
        self.home = home
        self.url = ""
        self.process: subprocess.Popen[str] | None = None
        self.stdout: list[str] = []
        self.stderr: list[str] = []

    def start(self) -> GateProcess:
        return self.launch().wait_ready()

    def launch(self) -> GateProcess:
        """Start the process; `wait_ready` waits for it to listen (launch several, then wait: faster)."""
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HOME": str(self.home), "TRUSTPOLICY_NUGET_USER_DIR": "", "TRUSTPOLICY_NUGET_MACHINE_DIR": "",
               "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", "trustpolicy", "serve", "--listen", "127.0.0.1:0", *self.args]
        self.process = subprocess.Popen(command, cwd=self.cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(self.process.stdout, self.stdout, self._lines), daemon=True).start()
        threading.Thread(target=_pump, args=(self.process.stderr, self.stderr, None), daemon=True).start()
        return self

    def wait_ready(self) -> GateProcess:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                break
            if line.startswith("trustpolicy serve: listening on "):
                self.url = line.split()[4]
                return self
        self.stop()
        raise AssertionError(f"the gate did not start: {self.output()}")

    def feed(self, name: str) -> str:
        return f"{self.url}/feeds/{name}/v3/index.json"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no cleanup of any kind
        self.process.wait(10)

    def output(self) -> str:
        return "stdout:\n" + "".join(self.stdout) + "\nstderr:\n" + "".join(self.stderr)

    def __enter__(self) -> GateProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pump(stream: Any, sink: list[str], lines: queue.Queue[str | None] | None) -> None:
    for line in stream:
        sink.append(line)
        if lines is not None:
            lines.put(line)
    if lines is not None:
        lines.put(None)


def gate_args(world: ServeWorld, cache: Path, *extra: str, upstreams: dict[str, str] | None = None,
              config: Path | None = None) -> list[str]:
    args = ["--configfile", str(config or world.config), "--trust-store", str(world.roots), "--revocation", "off",
            "--cache-dir", str(cache), "--workers", "1"]
    for name, url in (upstreams or {}).items():
        args += ["--upstream", f"{name}={url}"]
    return args + list(extra)


# -- a client that speaks V3 like NuGet --------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


_NO_PROXY = urllib.request.ProxyHandler({})


def get(url: str, *, context: ssl.SSLContext | None = None, timeout: float = 30.0) -> Answer:
    """One GET; any status is an Answer (NuGet prints the reason phrase of a failure)."""
    handlers: list[Any] = [_NO_PROXY]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers={"User-Agent": "trustpolicy-tests (NuGet V3 walk)"})
    try:
        with opener.open(request, timeout=timeout) as response:
            return Answer(response.status, response.reason, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Answer(error.code, error.reason, dict(error.headers), error.read())


class V3Client:
    """What restore and install do, in order: service index -> resource -> versions / metadata -> .nupkg."""

    # the @type names nuget.exe 5.8 looks up, in its order
    REGISTRATION = ("RegistrationsBaseUrl/Versioned", "RegistrationsBaseUrl/3.4.0", "RegistrationsBaseUrl/3.0.0-beta")
    FLAT = ("PackageBaseAddress/3.0.0",)
    SEARCH = ("SearchQueryService/Versioned", "SearchQueryService/3.4.0", "SearchQueryService/3.0.0-beta")

    def __init__(self, index_url: str, context: ssl.SSLContext | None = None) -> None:
        self.index_url = index_url
        self.context = context

    def get(self, url: str) -> Answer:
        return get(url, context=self.context)

    def resources(self) -> dict[str, str]:
        answer = self.get(self.index_url)
        assert answer.status == 200, (answer.status, answer.reason)
        document = answer.json()
        assert document["version"].startswith("3.")
        found: dict[str, str] = {}
        for resource in document["resources"]:
            found.setdefault(resource["@type"], resource["@id"])
        return found

    def resource(self, types: tuple[str, ...]) -> str:
        found = self.resources()
        return next(found[t] for t in types if t in found)

    def versions(self, package_id: str) -> list[str] | None:
        answer = self.get(f"{self.resource(self.FLAT)}{package_id.lower()}/index.json")
        if answer.status == 404:
            return None
        assert answer.status == 200, (answer.status, answer.reason)
        return answer.json()["versions"]

    def restore(self, package_id: str, version: str) -> Answer:
        """PackageReference restore: the listed version string, then the flat container .nupkg."""
        base = self.resource(self.FLAT)
        listed = self.versions(package_id) or []
        chosen = next((v for v in listed if v == version.lower()), version.lower())
        lid = package_id.lower()
        return self.get(f"{base}{lid}/{chosen}/{lid}.{chosen}.nupkg")

    def package_contents(self, package_id: str) -> dict[str, str]:
        """version -> packageContent, from the registration index and any page it does not inline."""
        answer = self.get(f"{self.resource(self.REGISTRATION)}{package_id.lower()}/index.json")
        if answer.status == 404:
            return {}
        assert answer.status == 200, (answer.status, answer.reason)
        found: dict[str, str] = {}
        for page in answer.json()["items"]:
            assert "lower" in page and "upper" in page
            items = page.get("items")
            if items is None:
                fetched = self.get(page["@id"])
                assert fetched.status == 200, (page["@id"], fetched.status, fetched.reason)
                items = fetched.json()["items"]
            for leaf in items:
                found[leaf["catalogEntry"]["version"]] = leaf["packageContent"]
        return found

    def install(self, package_id: str, version: str) -> Answer:
        """nuget.exe install: registration -> the leaf's packageContent."""
        return self.get(self.package_contents(package_id)[version])

    def search(self, text: str) -> Any:
        answer = self.get(f"{self.resource(self.SEARCH)}?q={text}&prerelease=true&semVerLevel=2.0.0")
        assert answer.status == 200, (answer.status, answer.reason)
        return answer.json()


def read_audit(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def wait_for(condition: Any, timeout: float = 15.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def copy_world_feed(world: ServeWorld, target: Path, keys: tuple[str, ...]) -> Path:
    """A local folder feed (flat layout) holding some of the world's packages."""
    target.mkdir(parents=True, exist_ok=True)
    for key in keys:
        shutil.copy(world.packages[key], target)
    return target
