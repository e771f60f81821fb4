"""The gate's HTTP server: routes, the path of a package request, startup, reload and shutdown.

A package request: validate id and version -> the file this feed gave before (content-addressed,
re-hashed once per process) and its verdict under today's policy, or else one download per package
however many clients ask -> verdict in a worker -> stored -> decided (served, refused with 403 and a
reason phrase, or 502/504 when the upstream did not deliver the package asked for) -> one audit line.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import ssl
import sys
import time
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from trustpolicy._internal import clock
from trustpolicy.context import TrustOptions
from trustpolicy.errors import TrustPolicyError, UsageError
from trustpolicy.models import PackageVerdict
from trustpolicy.serve.audit import AuditLog
from trustpolicy.serve.gate import Judge, Judgement, JudgePool, VerificationFailed, build_judge, decide, verdict_document
from trustpolicy.serve.metrics import CONTENT_TYPE, Metrics
from trustpolicy.serve.protocol import (
    BadName,
    FeedUrls,
    is_feed_name,
    package_id,
    package_version,
    registration_tail,
    service_index,
)
from trustpolicy.serve.store import PackageStore
from trustpolicy.serve.upstream import FolderFeed, HttpFeed, Limits, UpstreamError, feed_from_source

_HOST_HEADER = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]{1,5})?\Z|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?\Z")
_NUPKG_TYPE = "application/octet-stream"
_READ_BUFFER = 1 << 18  # per upstream connection: fewer, larger reads per download


@dataclass(frozen=True)
class ServeOptions:
    trust: TrustOptions
    cache_dir: Path
    host: str = "127.0.0.1"
    port: int = 5555
    upstreams: tuple[tuple[str, str], ...] = ()  # (name, URL or folder); none: the config's packageSources
    audit_log: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    public_url: str | None = None  # how clients reach the gate; default: the Host they asked for
    limits: Limits = field(default_factory=Limits)
    workers: int = 2
    verify_timeout: float = 300.0  # seconds one verification may take
    allow_hosts: tuple[str, ...] = ()
    reload_interval: float = 2.0  # seconds between checks of the config files; 0: only on SIGHUP


@dataclass(frozen=True)
class FeedSpec:
    name: str
    location: str  # URL or folder
    base: Path | None  # folder that a relative location is relative to (its config file's)


@dataclass(frozen=True)
class Judged:
    verdict: PackageVerdict
    sha512: str
    path: Path
    cached: bool


class BadPackage(UpstreamError):
    """The upstream sent something that is not the package asked for (not a package, another one)."""

    def __init__(self, reason: str, sha512: str, verdict: PackageVerdict) -> None:
        super().__init__(502, reason)
        self.sha512 = sha512
        self.verdict = verdict


# -- the package path ----------------------------------------------------------------------------------


class Gate:
    """Everything a request needs: the policy and its workers, the feeds, the cache, the logs."""

    def __init__(self, options: ServeOptions, pool: JudgePool, feeds: dict[str, HttpFeed | FolderFeed],
                 store: PackageStore, audit: AuditLog, metrics: Metrics) -> None:
        self.options = options
        self.pool = pool
        self.feeds = feeds
        self.store = store
        self.audit = audit
        self.metrics = metrics
        self._inflight: dict[tuple[str, ...], asyncio.Future[Judged]] = {}

    @property
    def judge(self) -> Judge:
        return self.pool.judge

    async def obtain(self, feed: HttpFeed | FolderFeed, lower_id: str, version: str) -> Judged:
        """The judged package: from the cache, by re-judging the cached file, or by downloading it."""
        pool = self.pool
        policy = pool.judge.policy(clock.now().date())
        sha512 = self.store.lookup(feed.name, lower_id, version)
        if sha512 is not None:
            path = await self._intact(sha512)
            if path is None:
                self.store.forget(feed.name, lower_id, version)  # damaged or gone: fetch it again
            else:
                verdict = self.store.verdict(sha512, policy)
                if verdict is not None:
                    return Judged(verdict, sha512, path, cached=True)
                return await self._once(("judge", sha512, policy), lambda: self._rejudge(pool, sha512, path))
        return await self._once(("fetch", feed.name, lower_id, version), lambda: self._fetch(pool, feed, lower_id, version))

    async def _once(self, key: tuple[str, ...], work: Callable[[], Awaitable[Judged]]) -> Judged:
        """Concurrent requests for the same work share one run of it; a client that goes away
        does not cancel it for the others."""
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(work())
            self._inflight[key] = task

            def done(finished: asyncio.Future[Judged]) -> None:
                if self._inflight.get(key) is finished:
                    del self._inflight[key]
                if not finished.cancelled():
                    finished.exception()  # retrieved: nobody may be waiting any more

            task.add_done_callback(done)
        return await asyncio.shield(task)

    async def _intact(self, sha512: str) -> Path | None:
        if self.store.needs_check(sha512):  # hashing a large file: not on the event loop
            return await asyncio.get_running_loop().run_in_executor(None, self.store.intact, sha512)
        return self.store.intact(sha512)

    async def _fetch(self, pool: JudgePool, feed: HttpFeed | FolderFeed, lower_id: str, version: str) -> Judged:
        temp = self.store.temp_file()
        try:
            started = time.monotonic()
            try:
                await feed.download(lower_id, version, temp)
            except UpstreamError as error:
                self.metrics.count("upstream_requests_total", feed=feed.name, outcome=str(error.status))
                raise
            self.metrics.count("upstream_requests_total", feed=feed.name, outcome="200")
            self.metrics.observe("upstream_seconds", time.monotonic() - started, feed=feed.name)
            judgement = await self._verify(pool, temp)
            verdict, sha512 = judgement.verdict, judgement.sha512
            decision = decide(pool.judge.mode, verdict, lower_id, version)
            if decision.outcome == "bad-package":
                raise BadPackage(decision.reason, sha512, verdict)  # not what was asked for: nothing is kept
            path = self.store.admit(temp, sha512)
            self.store.remember_verdict(sha512, pool.judge.policy(judgement.at.date()), verdict)
            self.store.remember(feed.name, lower_id, version, sha512)
            return Judged(verdict, sha512, path, cached=False)
        finally:
            try:
                temp.unlink()
            except OSError:
                pass

    async def _rejudge(self, pool: JudgePool, sha512: str, path: Path) -> Judged:
        """The policy changed (or a day passed): judge the cached file again, without downloading it."""
        judgement = await self._verify(pool, path)
        if judgement.sha512 != sha512:
            raise UpstreamError(502, "the cached package changed while it was being verified; try again")
        self.store.remember_verdict(sha512, pool.judge.policy(judgement.at.date()), judgement.verdict)
        return Judged(judgement.verdict, sha512, path, cached=True)

    async def _verify(self, pool: JudgePool, path: Path) -> Judgement:
        started = time.monotonic()
        try:
            judgement = await pool.judge_file(path)
        except VerificationFailed as error:
            raise UpstreamError(error.status, f"TP0004 {error}") from None
        self.metrics.count("verifications_total")
        self.metrics.observe("verification_seconds", time.monotonic() - started)
        return judgement


# -- HTTP -------------------------------------------------------------------------------------------------


class Handlers:
    def __init__(self, gate: Gate, https: bool) -> None:
        self.gate = gate
        self.https = https

    def routes(self) -> list[web.AbstractRouteDef]:
        feed = "/feeds/{feed}/v3"
        return [
            web.get("/healthz", self.healthz),
            web.get("/metrics", self.metrics),
            web.get(f"{feed}/index.json", self.index),
            web.get(f"{feed}/flat/{{id}}/index.json", self.versions),
            web.get(f"{feed}/flat/{{id}}/{{version}}/{{file}}", self.package),
            web.get(f"{feed}/registration/{{hive:[0-9]}}/{{tail:.+}}", self.registration),
            web.get(f"{feed}/search", self.search),
            web.get(f"{feed}/autocomplete", self.autocomplete),
            web.get(f"{feed}/repository-signatures/index.json", self.signatures),
        ]

    # -- plumbing --

    def _feed(self, request: web.Request) -> HttpFeed | FolderFeed:
        feed = self.gate.feeds.get(request.match_info["feed"])
        if feed is None:
            raise _error(404, "no such feed")
        return feed

    def _urls(self, request: web.Request, feed: HttpFeed | FolderFeed) -> FeedUrls:
        public = self.gate.options.public_url
        if public is None:
            host = request.headers.get("Host", "")
            if not _HOST_HEADER.match(host):
                host = _authority(self.gate.options.host, self.gate.options.port)
            public = f"{'https' if self.https else 'http'}://{host}"
        return FeedUrls.of(public, feed.name)

    # -- service index, versions, metadata --

    async def index(self, request: web.Request) -> web.Response:
        feed = self._feed(request)
        offers = await feed.capabilities()
        document = service_index(self._urls(request, feed), registration=offers.registration, search=offers.search,
                                 autocomplete=offers.autocomplete, signatures=offers.signatures and self.https)
        return _json(request, document)

    async def versions(self, request: web.Request) -> web.Response:
        feed = self._feed(request)
        lower_id = _checked(package_id, request.match_info["id"])
        versions = await feed.versions(lower_id)
        if versions is None:
            raise _error(404, f"{lower_id} is not on this feed")
        return _json(request, {"versions": versions})

    async def registration(self, request: web.Request) -> web.Response:
        feed = self._feed(request)
        tail = _checked(registration_tail, request.match_info["tail"])
        document = await feed.registration(int(request.match_info["hive"]), tail, self._urls(request, feed))
        if document is None:
            raise _error(404, "no such registration document")
        return _json(request, document)

    async def search(self, request: web.Request) -> web.Response:
        feed = self._feed(request)
        document = await feed.search(dict(request.query), self._urls(request, feed))
        if document is None:
            raise _error(404, "this feed has no search")
        return _json(request, document)

    async def autocomplete(self, request: web.Request) -> web.Response:
        feed = self._feed(request)
        document = await feed.autocomplete(dict(request.query), self._urls(request, feed))
        if document is None:
            raise _error(404, "this feed has no autocomplete")
        return _json(request, document)

    async def signatures(self, request: web.Request) -> web.Response:
        feed = self._feed(request)
        # Clients refuse a source that announces repository signatures over http: only over https.
        document = await feed.repository_signatures() if self.https else None
        if document is None:
            raise _error(404, "no repository signatures here")
        return _json(request, document)

    # -- the gate --

    async def package(self, request: web.Request) -> web.StreamResponse:
        feed = self._feed(request)
        lower_id = _checked(package_id, request.match_info["id"])
        version = _checked(package_version, request.match_info["version"])
        file = request.match_info["file"].lower()
        if file not in (f"{lower_id}.{version}.nupkg", f"{lower_id}.nuspec"):
            raise _error(404, "not a file of this package")
        gate = self.gate
        mode = gate.judge.mode
        asked = {"client": request.remote, "feed": feed.name, "id": lower_id, "version": version, "mode": mode}
        try:
            judged = await gate.obtain(feed, lower_id, version)
        except UpstreamError as error:
            bad = error if isinstance(error, BadPackage) else None
            outcome = "bad-package" if bad else {404: "not-found"}.get(error.status, "upstream-error")
            gate.metrics.count("decisions_total", outcome=outcome)
            gate.audit.write({**asked, "sha512": bad.sha512 if bad else None, "decision": outcome, "status": error.status,
                              "verdict": bad.verdict.verdict if bad else None, "codes": _codes(bad.verdict if bad else None),
                              "trustedSigner": None, "reason": error.reason, "cached": False})
            raise _error(error.status, error.reason, verdict=verdict_document(bad.verdict) if bad else None) from None
        verdict = judged.verdict
        decision = decide(mode, verdict, lower_id, version)
        gate.metrics.count("decisions_total", outcome=decision.outcome)
        gate.metrics.count("cache_total", result="hit" if judged.cached else "miss")
        for issue in verdict.issues:
            gate.metrics.count("verdict_codes_total", code=issue.code.value, level=issue.level.value)
        signer = verdict.trusted_signer
        gate.audit.write({**asked, "id": verdict.id or lower_id, "version": verdict.version or version,
                          "sha512": judged.sha512, "decision": decision.outcome, "status": decision.status,
                          "verdict": verdict.verdict, "codes": _codes(verdict), "trustedSigner": signer.to_json() if signer else None,
                          "reason": None if decision.outcome == "served" else decision.reason, "cached": judged.cached})
        if not decision.served:
            raise _error(decision.status, decision.reason, verdict=verdict_document(verdict), mode=mode)
        if file.endswith(".nuspec"):
            manifest = await asyncio.get_running_loop().run_in_executor(None, _manifest, judged.path)
            return web.Response(body=manifest, content_type="application/xml")
        headers = {"Content-Type": _NUPKG_TYPE}
        if decision.outcome == "audit-served":
            headers["X-Trustpolicy-Audit"] = decision.reason  # served, but the policy would refuse it
        return web.FileResponse(judged.path, headers=headers)

    # -- operations --

    async def healthz(self, request: web.Request) -> web.Response:
        judge = self.gate.judge
        return web.json_response({"status": "ok", "mode": judge.mode, "policy": judge.policy(clock.now().date()),
                                  "feeds": sorted(self.gate.feeds), "configFiles": list(judge.config_files)})

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=self.gate.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


def _checked(check: Callable[[str], str], text: str) -> str:
    try:
        return check(text)
    except BadName as error:
        raise _error(400, str(error)) from None


def _error(status: int, reason: str, **details: Any) -> web.HTTPException:
    """An error answer: the reason phrase (what NuGet clients print) and a JSON body with the details."""
    kind = {400: web.HTTPBadRequest, 403: web.HTTPForbidden, 404: web.HTTPNotFound, 500: web.HTTPInternalServerError,
            502: web.HTTPBadGateway, 504: web.HTTPGatewayTimeout}[status]
    body = {"error": reason, **{k: v for k, v in details.items() if v is not None}}
    return kind(reason=reason, text=_dumps(body), content_type="application/json")


def _json(request: web.Request, document: Any) -> web.Response:
    text = _dumps(document)
    response = web.Response(text=text, content_type="application/json")
    if "gzip" in request.headers.get("Accept-Encoding", "") and len(text) > 1024:
        response.enable_compression(web.ContentCoding.gzip)  # "deflate" is read as raw deflate by .NET and mono
    return response


def _dumps(document: Any) -> str:
    import json

    return json.dumps(document, separators=(",", ":"))


def _codes(verdict: PackageVerdict | None) -> list[str]:
    return list(dict.fromkeys(verdict.codes())) if verdict else []


def _manifest(path: Path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        name = next(i.filename for i in archive.infolist() if "/" not in i.filename and i.filename.lower().endswith(".nuspec"))
        with archive.open(name) as handle:
            return handle.read(1 << 20)


@web.middleware
async def _observe(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Counts every answer; turns an upstream failure or an unexpected error into a clean status."""
    metrics: Metrics = request.app["metrics"]
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unknown"
    try:
        try:
            response = await handler(request)
        except UpstreamError as error:
            raise _error(error.status, error.reason) from None
        except (web.HTTPException, asyncio.CancelledError):
            raise
        except Exception as error:
            print(f"trustpolicy serve: internal error on {request.path}: {type(error).__name__}: {error}",
                  file=sys.stderr, flush=True)
            raise _error(500, "internal error") from None
    except web.HTTPException as error:
        metrics.count("requests_total", route=route, status=str(error.status))
        raise
    metrics.count("requests_total", route=route, status=str(response.status))
    return response


# -- startup, reload, shutdown ------------------------------------------------------------------------------


def feed_specs(options: ServeOptions, judge: Judge) -> list[FeedSpec]:
    """The feeds to serve: --upstream, or the packageSources of the NuGet.Config the policy comes from."""
    if options.upstreams:
        specs = [FeedSpec(name, location, None) for name, location in options.upstreams]
    else:
        loaded = judge.context.loaded
        specs = []
        for name, value in loaded.settings.sources.items():
            where = loaded.source_locations.get(name)
            base = Path(where.path).parent if where is not None and where.path else None
            if not is_feed_name(name):
                print(f"trustpolicy serve: warning: package source {name!r} is not served: its name cannot be "
                      "used in a URL path (letters, digits, '.', '_', '-' and spaces)", file=sys.stderr)
                continue
            specs.append(FeedSpec(name, value, base))
        if not specs:
            raise UsageError("no package sources to serve: the NuGet.Config has none; pass --upstream NAME=URL")
    seen: set[str] = set()
    for spec in specs:
        if not is_feed_name(spec.name):
            raise UsageError(f"--upstream: {spec.name!r} is not a usable feed name (letters, digits, '.', '_', '-', spaces)")
        if spec.name in seen:
            raise UsageError(f"--upstream: the name {spec.name!r} is given twice")
        seen.add(spec.name)
    return specs


def make_feeds(specs: list[FeedSpec], session: aiohttp.ClientSession, options: ServeOptions) -> dict[str, HttpFeed | FolderFeed]:
    return {spec.name: feed_from_source(spec.name, spec.location, session, options.limits,
                                        frozenset(h.lower() for h in options.allow_hosts), spec.base)
            for spec in specs}


def tls_context(options: ServeOptions) -> ssl.SSLContext | None:
    if not options.tls_cert and not options.tls_key:
        return None
    if not (options.tls_cert and options.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(options.tls_cert, options.tls_key)
    except (OSError, ssl.SSLError) as error:
        raise UsageError(f"cannot use the TLS certificate {options.tls_cert} and key {options.tls_key}: {error}") from None
    return context


def serve(options: ServeOptions) -> int:
    """Run the gate until SIGTERM or SIGINT. Bad options, config or trust store: TrustPolicyError."""
    judge = build_judge(options.trust)
    specs = feed_specs(options, judge)
    context = tls_context(options)
    for spec in specs:
        scheme = spec.location.split(":", 1)[0].lower()
        if scheme == "http" and not spec.location.lower().startswith(("http://127.", "http://localhost", "http://[::1]")):
            print(f"trustpolicy serve: warning: upstream {spec.name} is plain http ({spec.location}): its answers "
                  "can be changed on the way; packages are still verified", file=sys.stderr)
    return asyncio.run(_run(options, judge, specs, context))


async def _run(options: ServeOptions, judge: Judge, specs: list[FeedSpec], context: ssl.SSLContext | None) -> int:
    loop = asyncio.get_running_loop()
    store = PackageStore(options.cache_dir)
    audit = AuditLog(options.audit_log)
    metrics = Metrics()
    session = aiohttp.ClientSession(headers={"User-Agent": "trustpolicy-serve"}, trust_env=False, auto_decompress=True,
                                    connector=aiohttp.TCPConnector(limit=64), read_bufsize=_READ_BUFFER)
    pool = JudgePool(judge, options.workers, options.verify_timeout)
    gate = Gate(options, pool, make_feeds(specs, session, options), store, audit, metrics)
    try:
        # Workers start while the socket already listens: a first download waits for one, nothing else does.
        warming = asyncio.create_task(gate.pool.warm_up())
        app = web.Application(middlewares=[_observe], client_max_size=1 << 16)
        app["metrics"] = metrics
        app.add_routes(Handlers(gate, https=context is not None).routes())
        stop = asyncio.Event()
        reloads: asyncio.Queue[str] = asyncio.Queue()
        if sys.platform != "win32":
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            loop.add_signal_handler(signal.SIGINT, stop.set)
            loop.add_signal_handler(signal.SIGHUP, reloads.put_nowait, "SIGHUP")
        else:  # no signal handlers on Windows' event loop: Ctrl-C stops; config edits still reload (polled)
            signal.signal(signal.SIGINT, lambda *_: loop.call_soon_threadsafe(stop.set))
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, options.host, options.port, ssl_context=context, backlog=1024)
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            raise UsageError(f"cannot listen on {_authority(options.host, options.port)}: {error.strerror or error}") from None
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        url = f"{'https' if context else 'http'}://{_authority(options.host, port)}"
        print(f"trustpolicy serve: listening on {url} ({judge.mode} mode)", flush=True)
        for name, feed in gate.feeds.items():
            print(f"  {url}/feeds/{name}/v3/index.json -> {feed.location}", flush=True)
        workers = [asyncio.create_task(_reloader(gate, options, session, reloads)),
                   asyncio.create_task(_watch(gate, options, reloads))]
        await stop.wait()
        for task in (*workers, warming):
            task.cancel()
        await runner.cleanup()
        print("trustpolicy serve: stopped", flush=True)
        return 0
    finally:
        await session.close()
        gate.pool.close(wait=True)
        store.close()
        audit.close()


async def _reloader(gate: Gate, options: ServeOptions, session: aiohttp.ClientSession, reloads: asyncio.Queue[str]) -> None:
    """Applies a changed policy: a new judge and new workers; verdicts of the old policy stay unused."""
    loop = asyncio.get_running_loop()
    while True:
        why = await reloads.get()
        if why == "SIGHUP":
            try:
                gate.audit.reopen()  # after logrotate
            except TrustPolicyError as error:
                print(f"trustpolicy serve: {error}", file=sys.stderr, flush=True)
        try:
            judge = await loop.run_in_executor(None, build_judge, options.trust)
            specs = None if options.upstreams else feed_specs(options, judge)
        except TrustPolicyError as error:
            gate.metrics.count("policy_reloads_total", result="failed")
            print(f"trustpolicy serve: the policy was not reloaded ({why}), the previous one stays in force: {error}",
                  file=sys.stderr, flush=True)
            continue
        today = clock.now().date()
        if specs is not None and [(s.name, s.location) for s in specs] != [(n, f.location) for n, f in gate.feeds.items()]:
            gate.feeds = make_feeds(specs, session, options)
        if judge.policy(today) == gate.judge.policy(today) and judge.mode == gate.judge.mode:
            gate.pool.judge = judge  # the same verdicts; it may have been read from other files
            continue
        pool = JudgePool(judge, options.workers, options.verify_timeout)
        await pool.warm_up()
        old, gate.pool = gate.pool, pool
        old.close(wait=False)  # verifications already running there finish and are answered
        gate.metrics.count("policy_reloads_total", result="applied")
        print(f"trustpolicy serve: policy reloaded ({why}): {judge.mode} mode, policy {judge.policy(today)[:12]}",
              flush=True)


async def _watch(gate: Gate, options: ServeOptions, reloads: asyncio.Queue[str]) -> None:
    """Notices edits of the config files in use (the reload itself decides whether the policy changed)."""
    if options.reload_interval <= 0:
        return
    seen = _stamps(gate.judge.config_files)
    while True:
        await asyncio.sleep(options.reload_interval)
        now = _stamps(gate.judge.config_files)
        if now != seen:
            seen = now
            await reloads.put("config file changed")


def _stamps(paths: tuple[str, ...]) -> list[tuple[str, Any]]:
    stamps: list[tuple[str, Any]] = []
    for path in paths:
        try:
            info = os.stat(path)
            stamps.append((path, (info.st_ino, info.st_size, info.st_mtime_ns)))
        except OSError:
            stamps.append((path, None))
    return stamps


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
