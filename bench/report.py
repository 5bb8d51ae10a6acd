"""Writes bench/results.md from the harness's JSON lines."""
import datetime
import json
import os
import sys

path, duration, connections, users = sys.argv[1:5]
rows = {}
ready = []
for line in open(path):
    entry = json.loads(line)
    rows[entry["name"]] = entry
    if entry["name"] == "ready_ms":
        ready.append(entry["value"])

# The highest one-GET ceiling: a faster client stack must not flatter the ratios.
ceiling = max(rows[name]["rps"] for name in ("ceiling", "ceiling_per_worker", "ceiling_lanes"))


def row(label, name, note=""):
    entry = rows[name]
    p50 = f"{entry['p50']:.2f}" if entry.get("p50") is not None else "-"
    p99 = f"{entry['p99']:.2f}" if entry.get("p99") is not None else "-"
    return (
        f"| {label} | {entry['rps']:,.0f} | {entry['rps'] / ceiling:.0%} | {p50} | {p99} "
        f"| {entry['errors']} | {note} |"
    )


def value(name, key="value"):
    return rows[name][key] if name in rows else None


def of_reference(name):
    return f"{rows[name]['rps'] / rows['ceiling_per_worker']['rps']:.1f}×"


def delay(label, name, note):
    entry = rows[name]
    return (
        f"| {label} | {entry['rounds']} | {entry['p50_ms']:.2f} | {entry['p99_ms']:.2f} "
        f"| {entry['max_ms']:.2f} | {note(entry)} |"
    )


def stale_note(entry):
    return (
        f"{entry['rounds_with_a_stale_read']} rounds saw a stale read after the 200 "
        f"({entry['stale_reads']} stale reads); 0 ms = B's next read was already new"
    )


b_sqlite = value("b_sqlite_misses")
b_pg = value("b_postgres_misses")
keep = rows["d_during_storm"]["rps"] / rows["a_48"]["rps"]
lines = [
    "# Benchmark results",
    "",
    f"`bench/run` on {datetime.date.today()}, {os.cpu_count()} cores, everything on one machine "
    f"(wrk -t1 -c{connections}, {duration} s per workload, {users} seeded users, Redis on loopback). "
    "Ratios are to the highest of the one-GET ceilings measured in the same run: absolute numbers "
    "move with the machine's load, ratios much less.",
    "",
    "| workload | req/s | of ceiling | p50 ms | p99 ms | errors | notes |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    row("actix-web + deadpool-redis as usually written: one shared pool, a checkout (PING) and one GET per request (`examples/redis_ceiling.rs`)", "ceiling"),
    row("the same with one deadpool pool per actix worker (deadpool-redis, one pool per worker)", "ceiling_per_worker"),
    row("**ceiling**: the same one GET through the service's `RedisClient` (a pool per thread, multiplexed lanes, no checkout)", "ceiling_lanes"),
    row("bound of this machine: the same actix-web program answering a constant body, no Redis (wrk and the kernel's share)", "constant"),
    row("(a) GET /users/{id}, cache hits, bearer token, rate limiter on", "a"),
    row("(a) the same, rate limiter off", "a_no_limiter"),
    row("(a) the same (rate limiter on) on a Redis Cluster: 3 masters and 3 replicas, on the same cores", "a_cluster",
        f"{rows['a_cluster']['rps'] / rows['ceiling_cluster_two']['rps']:.0%} of the two-GET cluster ceiling below"),
    row("cluster ceiling: one GET per request through the service's `RedisClient` on that cluster", "ceiling_cluster"),
    row("cluster ceiling, two GETs at once to keys on two masters (what a session check and a cache read cost there)", "ceiling_cluster_two"),
    row("(b) GET /users/{id}, cache flushed first, SQLite (5 s)", "b_sqlite",
        f"{b_sqlite} misses of {rows['b_sqlite']['requests']}"),
    row("(b) the same on PostgreSQL (5 s)", "b_postgres",
        f"{b_pg} misses of {rows['b_postgres']['requests']}"),
    row("(c) 95% GET / 5% PUT, random users, SQLite", "c"),
    row("(d) logins (argon2), 16 connections", "d_logins"),
    row("(d) cache hits, 48 connections, alone", "a_48"),
    row("(d) cache hits, 48 connections, during the login storm", "d_during_storm",
        f"keeps {keep:.0%} of its throughput"),
    row("(a) with the near cache on (`cache.near_enabled`), rate limiter on", "a_near"),
    row("(a) near cache on, on the second instance while the delays below are measured", "a_near_b"),
    "",
    f"Against deadpool-redis with one pool per worker instead: "
    f"(a) {of_reference('a')} with the rate limiter, {of_reference('a_no_limiter')} without, "
    f"{of_reference('a_near')} with the near cache; (b) SQLite {of_reference('b_sqlite')}, "
    f"PostgreSQL {of_reference('b_postgres')}.",
    "",
    "Near cache: how long a change stays invisible to another instance",
    "",
    "| measured | rounds | p50 ms | p99 ms | max ms | notes |",
    "| --- | --- | --- | --- | --- | --- |",
    delay("Redis write → the tracking link drops the near copy (in-process, SET round trip included)",
          "near_link", lambda e: f"{e['dropped_before_the_writer_saw_its_reply']} dropped before the writer saw its reply"),
    delay("PUT on instance A answered 200 → instance B serves the new user, both idle",
          "near_http_idle", stale_note),
    delay("the same while B serves workload (a) at full load",
          "near_http_loaded", stale_note),
    "",
    f"(e) Peak RSS (VmHWM) after the SQLite workloads: {value('rss_sqlite', 'rss_kib') / 1024:.1f} MiB; "
    f"PostgreSQL: {value('rss_postgres', 'rss_kib') / 1024:.1f} MiB; "
    f"near cache on: {value('rss_near', 'rss_kib') / 1024:.1f} MiB; "
    f"Redis Cluster: {value('rss_cluster', 'rss_kib') / 1024:.1f} MiB. "
    f"Start to ready (`/health/ready` 200, migrations included): "
    f"{', '.join(f'{ms} ms' for ms in ready)} (each start of the run).",
]
print("\n".join(lines))
