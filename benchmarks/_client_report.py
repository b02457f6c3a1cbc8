"""The text report of bench_client.py: its rows, the ratios to the floor and to Cisco's
module, and the targets they are checked against."""

from __future__ import annotations

CLIENT = "client"
CLIENT_CHANGING = "client, reply changes every call"
CISCO = "Cisco _confd.ha.status"

# The client issue's targets against the floor (met before issue 10 only with a last-reply
# cache, which issue 10 removed), and issue 10's targets against Cisco's _confd.ha.status.
TARGETS = {0: 1.3, 255: 10.0}
CISCO_TARGETS = {0: 1.15, 255: 0.5}


def _cisco_lines(rows, nodes: int) -> list:
    """The client rows as ratios to Cisco's status(), with issue 10's targets."""
    if CISCO not in rows:
        return []
    limit = CISCO_TARGETS.get(nodes)
    lines = []
    for name in (CLIENT, CLIENT_CHANGING):
        r = rows[name]
        verdict = "" if limit is None else "  target <= %gx: %s" % (
            limit, "met" if r["x_cisco_median"] <= limit else "NOT met")
        lines.append("    %-34s %8.2fx Cisco (mins %.2fx)%s" % (
            name, r["x_cisco_median"], r["x_cisco_min"], verdict))
    return lines


def _target_note(name: str, ratio: float, nodes: int) -> str:
    """The floor-target column of the two client rows."""
    limit = TARGETS.get(nodes)
    if limit is None or name not in (CLIENT, CLIENT_CHANGING):
        return ""
    return "  floor target <= %gx: %s" % (limit, "met" if ratio <= limit else "NOT met")


def _fmt_rows(rows, nodes=None) -> list:
    lines = []
    for name, r in rows.items():
        target = _target_note(name, r["ratio_median"], nodes) if nodes is not None else ""
        lines.append("    %-34s %9.2f %9.2f %8.2fx %8.2fx%s" % (
            name, r["median_us"], r["min_us"], r["ratio_median"], r["ratio_min"], target))
    return lines


HEADER = "    %-34s %9s %9s %9s %9s" % ("row", "median us", "min us", "x floor", "x (mins)")


def report(results) -> str:
    lines = []
    env = results["environment"]
    lines.append("confd_ha %s from %s" % (env["confd_ha_version"], env["confd_ha_path"]))
    lines.append("Python %s on %s, %d CPUs; %d rounds, batches of ~%g ms (load avg %s)" % (
        env["python"], env["platform"], env["cpus"], env["rounds"], env["batch_ms"],
        env.get("loadavg", "?")))
    for transport in ("unix", "tcp"):
        block = results.get("buffered_" + transport)
        if not block:
            continue
        lines.append("")
        lines.append("1. CPU time per status() call, replies already buffered (%s)" % (
            "AF_UNIX socketpair" if transport == "unix" else "loopback TCP"))
        for nodes in ("0", "255"):
            if nodes not in block:
                continue
            lines.append("  %s nodes:" % nodes)
            lines.append(HEADER)
            lines.extend(_fmt_rows(block[nodes]["rows"],
                                   int(nodes) if transport == "unix" else None))
            lines.extend(_cisco_lines(block[nodes]["rows"], int(nodes)))
    live = results.get("live_tcp")
    if live:
        lines.append("")
        lines.append("3. Wall time per call against a live responder (loopback TCP)")
        for nodes in ("0", "255"):
            lines.append("  %s nodes:" % nodes)
            lines.append(HEADER)
            lines.extend(_fmt_rows(live[nodes]["rows"]))
    dec = results.get("decoders")
    if dec:
        lines.append("")
        lines.append("4. CPU time to decode the 255-node payload (%d bytes); ratio to the first row"
                     % dec["payload_bytes"])
        lines.append("    %-48s %9s %9s %9s" % ("decoder", "median us", "min us", "ratio"))
        for name, r in dec["rows"].items():
            lines.append("    %-48s %9.2f %9.2f %8.2fx" % (
                name, r["median_us"], r["min_us"], r["ratio_median"]))
        for name, note in dec["notes"].items():
            lines.append("    note: %s: %s" % (name, note))
    bd = results.get("breakdown")
    if bd:
        lines.append("")
        lines.append("6. Where the time goes")
        for nodes, parts in bd.items():
            lines.append("  %s nodes, over AF_UNIX (CPU us per call):" % nodes)
            lines.append(HEADER)
            lines.extend(_fmt_rows(parts["io"]))
            lines.append("  %s nodes, pieces timed alone without a socket (CPU us per call):"
                         % nodes)
            lines.append("    %-46s %9s %9s" % ("", "median", "min"))
            for label, r in parts["pieces"].items():
                lines.append("    %-46s %9.3f %9.3f" % (label, r["median_us"], r["min_us"]))
    prof = results.get("profile")
    if prof:
        for label, text in prof.items():
            lines.append("")
            lines.append("6. cProfile of status(), %s (sorted by own time)" % label)
            lines.extend("    " + ln for ln in text.splitlines())
    return "\n".join(lines)
