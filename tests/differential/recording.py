"""The recording of a live differential run: what Cisco's module (and ``confd_ha``, at the
time) did in every case, on ConfD 8.2.5. Written only by a live run with ``--record``; its
``sha256`` covers everything else in the file, so an edit by hand is detected."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform

CONFD_VERSION = "8.2.5"
FORMAT = 1
HERE = os.path.dirname(os.path.abspath(__file__))


def path(version: str = CONFD_VERSION) -> str:
    return os.path.join(HERE, "recorded", "confd-%s" % version, "differential.json")


def digest(doc: dict) -> str:
    """sha256 of the canonical JSON of ``doc`` without its ``sha256`` field."""
    body = {k: v for k, v in doc.items() if k != "sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build(results: dict, kinds: dict, confd_version: str, summary: dict) -> dict:
    """The recording document; ``results`` maps case name → ``{side: steps}``."""
    import confd_ha

    doc = {
        "format": FORMAT,
        "confd_version": confd_version,
        "recorded_at": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"),
        "cisco_module": "_confd built from ConfD %s's pyapi source" % confd_version,
        "confd_ha_version": confd_ha.__version__,
        "python": platform.python_version(),
        "summary": summary,
        "cases": {name: {"kind": kinds[name], "cisco": r["cisco"], "confd_ha": r["confd_ha"]}
                  for name, r in sorted(results.items())},
    }
    doc["sha256"] = digest(doc)
    return doc


def save(doc: dict, version: str = CONFD_VERSION) -> str:
    p = path(version)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    tmp = p + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, p)
    return p


def load(version: str = CONFD_VERSION):
    """The recording, or None if there is none."""
    p = path(version)
    if not os.path.exists(p):
        return None
    with open(p, encoding="utf-8") as f:
        return json.load(f)
