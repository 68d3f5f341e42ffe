"""Host and Origin checks against DNS rebinding, on every bind (0.0.0.0 too).

A rebinding attack needs a host *name* the attacker controls that resolves to this server, so the
`Host` header of such a request carries that name. We therefore accept:

- IP literals (`10.0.0.5:8765`, `[::1]:8765`): nothing to rebind;
- `localhost`, the host of `MUGPOS_PUBLIC_URL`, RunPod's proxy name for this pod and port
  (`<pod id>-<port>.proxy.runpod.net`), and the names in `MUGPOS_ALLOWED_HOSTS` (comma separated;
  `*.example.com` matches sub-domains, a lone `*` turns the check off deliberately).

Ports never matter (a proxy maps 443 to 8765). A browser `Origin` must be the request's own host
(same origin), a loopback page, or an allowed name; `Origin: null` is refused.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

RUNPOD_PROXY = "proxy.runpod.net"


def split_host(value: str) -> tuple[str, str | None]:
    """`name[:port]` or `[v6][:port]` -> (lower-case name without brackets, port or None)."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        return name, rest[1:] if rest.startswith(":") else None
    if value.count(":") == 1:
        name, _, port = value.partition(":")
        return name, port
    return value, None


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def is_loopback_name(name: str) -> bool:
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class HostPolicy:
    names: frozenset[str]
    suffixes: tuple[str, ...] = ()
    any_host: bool = False

    def name_ok(self, name: str) -> bool:
        if self.any_host or is_ip(name) or is_loopback_name(name) or name in self.names:
            return True
        return any(name.endswith(s) for s in self.suffixes)

    def host_ok(self, host: str | None) -> bool:
        if not host:
            return False
        name, _ = split_host(host)
        return bool(name) and self.name_ok(name)

    def origin_ok(self, origin: str | None, host: str | None) -> bool:
        if origin is None:
            return True  # not a browser, or a same-origin GET
        if self.any_host:
            return True
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False  # "null", file://, chrome-extension://...
        if host and parts.netloc.lower() == host.strip().lower():
            return self.host_ok(host)  # same origin as an allowed host
        name = (parts.hostname or "").lower()
        if is_loopback_name(name):
            return True  # a page served from this machine (an inspector, a local dashboard)
        return not is_ip(name) and self.name_ok(name)

    def describe(self) -> str:
        if self.any_host:
            return "any host (MUGPOS_ALLOWED_HOSTS=*)"
        shown = sorted(self.names) + [f"*{s}" for s in self.suffixes]
        return ", ".join(["IP addresses", "localhost", *shown])


def host_policy(
    *,
    public_url: str | None,
    allowed_hosts: Iterable[str],
    port: int | None,
    runpod_pod_id: str | None = None,
) -> HostPolicy:
    """The policy for a server: names from the public URL, the settings and the RunPod pod id."""
    names: set[str] = set()
    suffixes: list[str] = []
    any_host = False
    if public_url:
        hostname = urlsplit(public_url).hostname
        if hostname:
            names.add(hostname.lower())
    for raw in allowed_hosts:
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            any_host = True
        elif entry.startswith("*."):
            suffixes.append(entry[1:])
        else:
            names.add(split_host(entry)[0])
    pod = runpod_pod_id or os.environ.get("RUNPOD_POD_ID")
    if pod and port:
        names.add(f"{pod.lower()}-{port}.{RUNPOD_PROXY}")
    return HostPolicy(frozenset(names), tuple(suffixes), any_host)
