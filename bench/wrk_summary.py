"""Turns `wrk --latency` output into one JSON line: rps, p50, p99 (ms), errors."""
import json
import re
import sys


def millis(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


out = sys.stdin.read()
summary = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
for name in ("50", "99"):
    match = re.search(rf"^\s+{name}%\s+(\S+)", out, re.M)
    summary[f"p{name}"] = millis(match.group(1)) if match else None
non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
summary["errors"] = (int(non_2xx.group(1)) if non_2xx else 0) + (
    sum(int(n) for n in socket.groups()) if socket else 0
)
summary["requests"] = int(re.search(r"(\d+) requests in", out).group(1))
print(json.dumps(summary))
