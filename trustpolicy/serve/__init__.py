"""`trustpolicy serve`: a NuGet V3 feed that hands out only the packages the policy allows.

Every upstream (a V3 service index or a local folder feed) is served at /feeds/{name}/v3/index.json.
A .nupkg is fetched from its upstream into a temporary file, judged by the same verifier and
NuGet.Config policy as `check` (in worker processes), and then served from a content-addressed
cache or refused with HTTP 403 and a reason phrase NuGet clients print. Registration and search
documents pass through with every package URL pointing back at the gate.

    app.py       routes, request handling, startup and reload
    upstream.py  the upstream feeds: V3 over HTTP(S) and local folders
    protocol.py  ids, versions, feed names, the service index and URL rewriting
    gate.py      the judge (policy -> verdict, in a worker) and the decision (verdict -> HTTP answer)
    store.py     the package cache (content-addressed) and the verdict cache
    audit.py     one JSON line per decision
    metrics.py   Prometheus counters and histograms
"""
