"""The authorisation matrix: six roles x every operation x own and foreign ids.

A role may get a 2xx only where it holds the operation's scope and, for a key bound to a
source, only on that source's records. Every response of a role without the sensitive
scopes is scanned for the national id, birth date and pay it must not see.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from api.deps import ROUTE_SCOPES
from mdm.services.context import Registry
from mdm.services.keys import create_key

ROLES: dict[str, dict[str, Any]] = {
    "integration_a": {"scopes": ["records:write", "records:read"], "source": "hris"},
    "integration_b": {"scopes": ["records:write", "records:read"], "source": "crm"},
    "steward": {"scopes": ["persons:read", "reviews:resolve", "persons:merge"]},
    "auditor": {"scopes": ["persons:read", "audit:read"]},
    "privacy_officer": {"scopes": ["persons:read", "persons:erase"]},
    "admin": {"scopes": ["admin"]},
}
SSN, BIRTH, PAY = "219099999", "1984-07-21", "187345"


def _seed(client: TestClient) -> dict[str, str]:
    ana = {"given_name": "Ana", "family_name": "Okafor", "email": "ana@okafor.io"}
    pay = {"amount": int(PAY), "currency": "USD", "period": "annual"}
    offer = {"amount": 150000, "currency": "USD", "period": "annual"}
    hris = client.post("/v1/records", json={"source": "hris", "source_id": "h1", "data": {
        **ana, "national_id": "219-09-9999", "birth_date": BIRTH, "employee_id": "E1",
        "compensation": pay}}).json()  # fmt: skip
    client.post("/v1/records", json={"source": "ats", "source_id": "a1", "data": {
        **ana, "compensation": offer}})  # fmt: skip
    crm = client.post("/v1/records", json={"source": "crm", "source_id": "c1", "data": {
        "given_name": "Bo", "family_name": "Chen", "email": "bo@chen.example"}}).json()  # fmt: skip
    client.post("/v1/records", json={"source": "crm", "source_id": "c2", "data": {
        "given_name": "Bo", "family_name": "Chen", "phone": "+34 612 345 678"}})  # fmt: skip
    client.post("/v1/records", json={"source": "hris", "source_id": "bad", "data": {}})
    client.post("/v1/records", json={"source": "crm", "source_id": "bad", "data": {}})
    rejections = client.get("/v1/rejections").json()["items"]
    review = client.get("/v1/reviews").json()["items"]
    hook = client.post("/v1/webhooks", json={"url": "https://93.184.215.14/h",
                                             "events": ["*"]}).json()  # fmt: skip
    return {
        "person_hris": hris["person_id"],
        "person_crm": crm["person_id"],
        "rejection_hris": next(r["id"] for r in rejections if r["source"] == "hris"),
        "rejection_crm": next(r["id"] for r in rejections if r["source"] == "crm"),
        "review": review[0]["id"] if review else "01a22619-2219-7c04-8e21-1a925a769deb",
        "webhook": hook["id"],
    }


def _requests(ids: dict[str, str], own_source: str | None) -> list[tuple[str, str, str, Any, bool]]:
    """(method, template, url, body, foreign): every operation, with own and foreign ids."""
    mine = own_source or "hris"
    other = "crm" if mine == "hris" else "hris"
    delivery = "01a22619-2219-7c04-8e21-1a925a769deb"
    out: list[tuple[str, str, str, Any, bool]] = []
    for foreign, source in ((False, mine), (True, other)):
        person = ids[f"person_{source}"]
        rejection = ids[f"rejection_{source}"]
        data = {"given_name": "Cy", "family_name": "Doe", "email": f"cy@{source}.io"}
        record = {"source": source, "source_id": f"n-{source}", "data": data}
        out += [
            ("POST", "/v1/records", "/v1/records", record, foreign),
            ("POST", "/v1/records:batch", "/v1/records:batch", {"records": [record]}, foreign),
            ("POST", "/v1/match", "/v1/match", {"source": source, "data": record["data"]}, foreign),
            ("POST", "/v1/records/{source}/{source_id}/split",
             f"/v1/records/{source}/{'h1' if source == 'hris' else 'c2'}/split", {}, foreign),
            ("GET", "/v1/persons", "/v1/persons?email=ana@okafor.io", None, foreign),
            ("GET", "/v1/persons/{person_id}", f"/v1/persons/{person}", None, foreign),
            ("GET", "/v1/persons/{person_id}/fields/{field}",
             f"/v1/persons/{person}/fields/compensation", None, foreign),
            ("GET", "/v1/persons/{person_id}/history", f"/v1/persons/{person}/history", None,
             foreign),
            ("POST", "/v1/persons/{person_id}/merge", f"/v1/persons/{person}/merge",
             {"other_id": person}, foreign),
            ("PUT", "/v1/persons/{person_id}/consents/{purpose}",
             f"/v1/persons/{person}/consents/marketing.email",
             {"granted": True, "source": source, "at": "2026-01-05T09:00:00Z"}, foreign),
            ("GET", "/v1/persons/{person_id}/consents", f"/v1/persons/{person}/consents", None,
             foreign),
            ("GET", "/v1/reviews", "/v1/reviews", None, foreign),
            ("GET", "/v1/reviews/{review_id}", f"/v1/reviews/{ids['review']}", None, foreign),
            ("POST", "/v1/reviews/{review_id}/resolve", f"/v1/reviews/{ids['review']}/resolve",
             {"decision": "keep"}, foreign),
            ("GET", "/v1/sources", "/v1/sources", None, foreign),
            ("GET", "/v1/sources/{source}/mapping", f"/v1/sources/{source}/mapping", None,
             foreign),
            ("GET", "/v1/rejections", "/v1/rejections", None, foreign),
            ("GET", "/v1/rejections/{rejection_id}", f"/v1/rejections/{rejection}", None, foreign),
            ("POST", "/v1/rejections/{rejection_id}/replay",
             f"/v1/rejections/{rejection}/replay", None, foreign),
            ("GET", "/v1/webhooks", "/v1/webhooks", None, foreign),
            ("POST", "/v1/webhooks", "/v1/webhooks",
             {"url": "https://93.184.215.14/x", "events": ["*"]}, foreign),
            ("GET", "/v1/webhooks/{subscription_id}", f"/v1/webhooks/{ids['webhook']}", None,
             foreign),
            ("GET", "/v1/webhooks/{subscription_id}/deliveries",
             f"/v1/webhooks/{ids['webhook']}/deliveries", None, foreign),
            ("POST", "/v1/webhooks/{subscription_id}/deliveries/{delivery_id}/replay",
             f"/v1/webhooks/{ids['webhook']}/deliveries/{delivery}/replay", None, foreign),
            ("DELETE", "/v1/webhooks/{subscription_id}", f"/v1/webhooks/{ids['webhook']}", None,
             foreign),
            ("GET", "/v1/health/sync", "/v1/health/sync", None, foreign),
            ("GET", "/v1/audit", "/v1/audit?limit=500", None, foreign),
            ("DELETE", "/v1/persons/{person_id}", f"/v1/persons/{person}?reason=DSR-1", None,
             foreign),
        ]  # fmt: skip
    return out


# Operations whose object carries no source: "foreign" means nothing for them.
SOURCELESS = {
    "/v1/match", "/v1/persons", "/v1/persons/{person_id}", "/v1/persons/{person_id}/fields/{field}",
    "/v1/persons/{person_id}/history", "/v1/persons/{person_id}/merge",
    "/v1/persons/{person_id}/consents", "/v1/reviews",
    "/v1/reviews/{review_id}", "/v1/reviews/{review_id}/resolve", "/v1/sources",
    "/v1/sources/{source}/mapping", "/v1/rejections", "/v1/webhooks",
    "/v1/webhooks/{subscription_id}", "/v1/webhooks/{subscription_id}/deliveries",
    "/v1/webhooks/{subscription_id}/deliveries/{delivery_id}/replay", "/v1/health/sync",
    "/v1/audit",
}  # fmt: skip


def test_no_role_gets_a_2xx_it_is_not_entitled_to(client: TestClient, registry: Registry) -> None:
    ids = _seed(client)
    covered: set[tuple[str, str]] = set()
    unauthorised: list[str] = []
    leaks: list[str] = []
    for role, spec in ROLES.items():
        _, key = create_key(registry, name=role, scopes=spec["scopes"], actor="t",
                            source=spec.get("source"))  # fmt: skip
        headers = {"Authorization": f"Bearer {key}"}
        bound = spec.get("source")
        held = set(spec["scopes"])
        for method, template, url, body, foreign in _requests(ids, bound):
            covered.add((method, template))
            r = client.request(method, url, json=body, headers=headers)
            ok = 200 <= r.status_code < 300
            if method == "POST" and template == "/v1/records:batch" and ok:
                ok = all("error" not in item for item in r.json()["results"])
            entitled = "admin" in held or ROUTE_SCOPES[(method, template)] in held
            if bound and foreign and template not in SOURCELESS:
                entitled = False
            if ok and not entitled:
                unauthorised.append(f"{role} {method} {url} -> {r.status_code}")
            if not held & {"admin", "persons:read:sensitive", "persons:read:compensation"}:
                for secret in (SSN, BIRTH, PAY):
                    if secret in r.text:
                        leaks.append(f"{role} {method} {url}: {secret}")
    assert covered == set(ROUTE_SCOPES)
    assert unauthorised == []
    assert leaks == []
