"""The cluster's hosts as network namespaces (`just up --profile cluster`, docs/cluster.md).

Host i is the namespace `<CLUSTER_NETNS_PREFIX>-h<i>`, with `lo` and one end of a veth pair
(`eth0`, address .10+i of CLUSTER_SUBNET); the other end (`<prefix>-v<i>`) is a port of the
bridge `<prefix>-br` in the root namespace, which holds .1: the address the hosts' processes
reach the infrastructure on (every server they use listens there too, cluster.py). Nothing routes
beyond the subnet. Taking `<prefix>-v<i>` down cuts host i off (the chaos scenario).

Made as root by `just up --profile cluster` (idempotent: only what is missing is added, and
every link is set up again), deleted by `just down --profile cluster`. Without CAP_NET_ADMIN (or
with CLUSTER_NETNS=off) the hosts are CLUSTER_HOSTS' loopback addresses, as before.
"""

import subprocess
from collections.abc import Callable

from stackctl.config import NETNS_RUN_DIR, StackSettings

Command = list[str]


def _run(cmd: Command) -> str | None:
    """None when `cmd` succeeded, else why not."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{' '.join(cmd)}: {exc}"
    if done.returncode != 0:
        return f"{' '.join(cmd)}: {(done.stderr or done.stdout).strip()}"
    return None


def existing_namespaces() -> set[str]:
    return {p.name for p in NETNS_RUN_DIR.iterdir()} if NETNS_RUN_DIR.is_dir() else set()


def existing_links() -> set[str]:
    """Interface names of the root namespace."""
    try:
        out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return set()
    # "7: shl-v1@if2: <BROADCAST,...> ..." -> "shl-v1"
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if line.count(":") >= 2}


def setup_commands(s: StackSettings, namespaces: set[str], links: set[str]) -> list[Command]:
    """What makes the bridge, the namespaces and their veth pairs, given the namespaces and root
    links that exist already: missing ones are added, every address and link (re)set, so a
    second run is a no-op and a link left down (a cut-off host) comes back up."""
    prefix = s.netns_subnet.prefixlen
    bridge = s.netns_bridge
    cmds: list[Command] = []
    if bridge not in links:
        cmds.append(["ip", "link", "add", bridge, "type", "bridge"])
    cmds += [
        ["ip", "addr", "replace", f"{s.netns_bridge_address}/{prefix}", "dev", bridge],
        ["ip", "link", "set", bridge, "up"],
    ]
    for ns, veth, address in zip(s.netns_names, s.netns_veths, s.netns_addresses, strict=True):
        if ns not in namespaces:
            cmds.append(["ip", "netns", "add", ns])
        if veth not in links:
            cmds.append(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
        cmds += [
            ["ip", "link", "set", veth, "master", bridge],
            ["ip", "link", "set", veth, "up"],
            ["ip", "-n", ns, "link", "set", "lo", "up"],
            ["ip", "-n", ns, "addr", "replace", f"{address}/{prefix}", "dev", "eth0"],
            ["ip", "-n", ns, "link", "set", "eth0", "up"],
        ]
    return cmds


def teardown_commands(s: StackSettings, namespaces: set[str], links: set[str]) -> list[Command]:
    """What deletes this cluster's veth pairs (the root end takes its peer with it), namespaces
    and bridge. The pairs first: a namespace's deletion removes its pair only eventually (and not
    while a process still holds the namespace)."""
    cmds: list[Command] = [["ip", "link", "delete", veth] for veth in s.netns_veths if veth in links]
    cmds += [["ip", "netns", "delete", ns] for ns in s.netns_names if ns in namespaces]
    if s.netns_bridge in links:
        cmds.append(["ip", "link", "delete", s.netns_bridge])
    return cmds


def choose(s: StackSettings, make: Callable[[], str | None]) -> str | None:
    """Whether the cluster's hosts are namespaces: None when `make()` made them (or they were
    there), else the reason they are loopback addresses (CLUSTER_NETNS=off, or `make`'s error
    with CLUSTER_NETNS=auto). With CLUSTER_NETNS=on, an error of `make` is raised."""
    if s.cluster_netns == "off":
        return "CLUSTER_NETNS=off"
    error = make()
    if error is not None and s.cluster_netns == "on":
        raise SystemExit(f"[stack] CLUSTER_NETNS=on, but the hosts' namespaces could not be made: {error}")
    return error


def make(s: StackSettings) -> str | None:
    """Run setup_commands; the first error (and what was made is deleted again), or None."""
    for cmd in setup_commands(s, existing_namespaces(), existing_links()):
        if (error := _run(cmd)) is not None:
            delete(s)
            return error
    return None


def ensure(s: StackSettings, say: Callable[[str], None]) -> bool:
    """Make the hosts' namespaces (or fall back to loopback addresses, saying why); True when the
    hosts are namespaces."""
    reason = choose(s, lambda: make(s))
    if reason is None:
        hosts = ", ".join(f"{ns} {a}" for ns, a in zip(s.netns_names, s.netns_addresses, strict=True))
        say(f"cluster hosts: network namespaces {hosts}, bridge {s.netns_bridge} {s.netns_bridge_address}")
        return True
    say(f"cluster hosts: NO network namespaces ({reason}); loopback addresses {s.cluster_hosts} instead")
    return False


def delete(s: StackSettings) -> list[str]:
    """Delete what exists of this cluster's namespaces and bridge; the errors."""
    errors = []
    for cmd in teardown_commands(s, existing_namespaces(), existing_links()):
        if (error := _run(cmd)) is not None:
            errors.append(error)
    return errors


def leftovers(s: StackSettings) -> list[str]:
    """This cluster's namespaces and links that still exist."""
    namespaces, links = existing_namespaces(), existing_links()
    return [n for n in s.netns_names if n in namespaces] + [
        link for link in (*s.netns_veths, s.netns_bridge) if link in links
    ]


def link_command(s: StackSettings, host_index: int, state: str) -> Command:
    """`ip link set <veth of host i> up|down`: host i's only link, seen from the root namespace."""
    return ["ip", "link", "set", s.netns_veths[host_index - 1], state]


def exec_prefix(ns: str | None) -> str:
    """The command prefix that runs a program in namespace `ns` (empty: none). `ip netns exec`
    execs the program (same pid): supervisord's signals reach it."""
    return f"ip netns exec {ns} " if ns else ""
