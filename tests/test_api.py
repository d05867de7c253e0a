"""The HTTP API over real HTTP (a `hikitsugi serve` process) against the sample index."""

from __future__ import annotations

import json

import httpx

from conftest import run_cli


def test_search_api_matches_cli(api, sample_home, model_dir):
    q = "ｽｷｬﾝしたのにメールが届かないって言われた"
    api = api.post("/search", json={"query": q, "k": 5}).json()
    cli = json.loads(run_cli("search", q, "--k", "5", "--json", env_home=sample_home, model=model_dir).stdout)
    assert [r["source_id"] for r in api["results"]] == [r["source_id"] for r in cli["results"]]
    assert len(api["results"]) == 5
    first = api["results"][0]
    for key in ("source_id", "kind", "title", "score", "snippet", "resolution", "url"):
        assert key in first


def test_malformed_requests_get_clear_4xx(api):
    r = api.post("/search", json={})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "query"
    r = api.post("/search", json={"query": "紙詰まり", "k": 0})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "k"
    r = api.post("/search", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = api.post("/search", json={"query": "   "})
    assert r.status_code == 422 and "empty" in r.json()["detail"][0]["message"]
    r = api.post("/search", json={"query": "x" * 5000})
    assert r.status_code == 422
    r = api.post("/search", json={"query": "紙詰まり", "customer": "存在しない"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "customer"


def test_documents_health_page_and_openapi(server, api):
    hit = api.post("/search", json={"query": "紙詰まり", "k": 1}).json()["results"][0]
    doc = api.get(hit["url"])
    assert doc.status_code == 200 and doc.json()["source_id"] == hit["source_id"] and doc.json()["chunks"]
    assert api.get("/documents/NO-SUCH-ID").status_code == 404
    health = httpx.get(server + "/healthz", timeout=30).json()
    assert health["status"] == "ok" and health["chunks"] > 300
    page = httpx.get(server + "/", timeout=30)
    assert page.status_code == 200 and "引き継ぎナレッジ検索" in page.text
    assert "/search" in httpx.get(server + "/openapi.json", timeout=30).json()["paths"]
