"""The ECS host's netfilter rules, run for real in network namespaces (issue 8, items 2, 3, 12-14).

The rules are not retyped here: `modules/lib/ecs-netfilter.nix` (what `modules/ecs-host.nix`
imports for its `nixecs-ecs-netfilter` unit) is evaluated with real Nix, and its `start`/`stop`
shell text, the unit's script and preStop, runs in a "host" namespace with the real iptables,
ip6tables and nft. Around it:

- a "task" namespace behind a bridge named `docker0` in the host namespace (a bridge-mode task);
- an "off-host" namespace on the host's `eth0`, which also holds the instance metadata service
  169.254.169.254 and fd00:ec2::254 (on EC2 it is off the instance, reached by routing: containers
  reach it through the host's FORWARD path, where DOCKER-USER is);
- listeners in the host namespace for the agent's credentials/TMDS endpoint (127.0.0.1:51679) and
  its introspection API (51678, IPv4 and IPv6).

Each scenario runs with the NixOS firewall off, with a model of its iptables chain, and with a model
of its nftables table (the models are written from nixpkgs, see `IPTABLES_FIREWALL`/`NFT_FIREWALL`).
What is a model: only the firewall (NixOS is not at hand); the kernel, the tools and our rules are
real. Names carry a random suffix, so parallel runs never collide; everything is removed in
`finally`. Needs root, iproute2, iptables, nft and nix-instantiate: in CI (`CI=true`) their absence
is a failure, not a skip.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from conftest import REPO, require, require_tool

pytestmark = pytest.mark.nix

NETFILTER_NIX = REPO / "modules" / "lib" / "ecs-netfilter.nix"
COMMAND_TIMEOUT = 20
# Generous: positive probes on a loaded machine (first IPv6 neighbour discovery) must not time out;
# the probes of one call run in parallel, so a refusal costs this once per call.
PROBE_TIMEOUT = 3.0

# A TCP listener that sends its token to every client (one process per listener).
SERVER = r"""
import socket, sys
host, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
family = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if family == socket.AF_INET6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.bind((host, port))
s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    try:
        c.sendall(token.encode())
    finally:
        c.close()
"""

# Probes targets in parallel; prints {"host port": token or "error: ..."} as JSON.
CLIENT = r"""
import json, socket, sys, threading
timeout = float(sys.argv[1])
results = {}
def probe(target):
    host, port = target.rsplit(" ", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as s:
            s.settimeout(timeout)
            results[target] = s.recv(100).decode()
    except OSError as e:
        results[target] = "error: " + type(e).__name__
threads = [threading.Thread(target=probe, args=(t,)) for t in sys.argv[2:]]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(results))
"""

# The NixOS iptables firewall as nixpkgs nixos/modules/services/networking/firewall-iptables.nix
# (NixOS/nixpkgs 0d953321, startScript) builds it with the defaults (rejectPackets = false,
# trustedInterfaces = [], no open ports), keeping the rules that decide here: lo trusted,
# established/related accepted, ICMPv6 accepted (IPv6 only; neighbour discovery), everything else
# to nixos-fw-log-refuse -> nixos-fw-refuse -> DROP, and `-A INPUT -j nixos-fw` (appended, so
# rules inserted at the top of INPUT come first). Log rules are left out: they do not decide.
IPTABLES_FIREWALL = """
{ip} -N nixos-fw-accept
{ip} -A nixos-fw-accept -j ACCEPT
{ip} -N nixos-fw-refuse
{ip} -A nixos-fw-refuse -j DROP
{ip} -N nixos-fw-log-refuse
{ip} -A nixos-fw-log-refuse -j nixos-fw-refuse
{ip} -N nixos-fw
{ip} -A nixos-fw -i lo -j nixos-fw-accept
{ip} -A nixos-fw -m conntrack --ctstate ESTABLISHED,RELATED -j nixos-fw-accept
{icmpv6}
{ip} -A nixos-fw -j nixos-fw-log-refuse
{ip} -A INPUT -j nixos-fw
"""

# The NixOS nftables firewall as nixpkgs nixos/modules/services/networking/firewall-nftables.nix
# (NixOS/nixpkgs 040b4eb6) writes its `inet nixos-fw` table with the defaults, keeping the input
# path: policy drop, lo trusted, the ct state vmap, and `input-allow` ending with
# networking.firewall.extraInputRules (here: what ecs-host.nix sets it to, evaluated).
NFT_FIREWALL = """
table inet nixos-fw {{
  chain input {{
    type filter hook input priority filter; policy drop;
    iifname {{ "lo" }} accept comment "trusted interfaces"
    ct state vmap {{
      invalid : drop,
      established : accept,
      related : accept,
      new : jump input-allow,
      untracked: jump input-allow,
    }}
  }}
  chain input-allow {{
    icmpv6 type != {{ nd-redirect, 139 }} accept
    {extra}
  }}
}}
"""

FIREWALLS = ["off", "iptables", "nftables"]

# Addresses (all inside the namespaces).
BRIDGE4, TASK4 = "172.17.0.1", "172.17.0.2"
BRIDGE6, TASK6 = "fd00:d0c::1", "fd00:d0c::2"
HOST4, OFF4 = "10.0.0.1", "10.0.0.2"
HOST6, OFF6 = "fd00:ff::1", "fd00:ff::2"
IMDS = "169.254.169.254"
IMDS6 = "fd00:ec2::254"
TMDS = "169.254.170.2"

CREDENTIALS = "agent-credentials-51679"
INTROSPECTION4 = "agent-introspection-51678-v4"
INTROSPECTION6 = "agent-introspection-51678-v6"
METADATA = "instance-metadata"
METADATA6 = "instance-metadata-v6"


def run(
    *args: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(args),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


def evaluate(**args: bool) -> dict[str, object]:
    """ecs-netfilter.nix's output for these arguments, evaluated by real Nix."""
    command = ["nix-instantiate", "--store", "dummy://", "--eval", "--strict", "--json"]
    given = " ".join(f"{name} = {'true' if value else 'false'};" for name, value in args.items())
    command += ["-E", f"import {NETFILTER_NIX} {{ {given} }}"]
    value = json.loads(run(*command).stdout)
    assert isinstance(value, dict)
    return value


@dataclass
class Topology:
    """Three network namespaces: host (with docker0 and eth0), task, off-host."""

    suffix: str = field(default_factory=lambda: secrets.token_hex(4))
    listeners: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"nxecs-h-{self.suffix}"

    @property
    def task(self) -> str:
        return f"nxecs-t-{self.suffix}"

    @property
    def off(self) -> str:
        return f"nxecs-o-{self.suffix}"

    def ns(self, ns: str, *args: str, check: bool = True, stdin: str | None = None) -> str:
        return run("ip", "netns", "exec", ns, *args, check=check, stdin=stdin).stdout

    def ip(self, ns: str, *args: str) -> None:
        run("ip", "-n", ns, *args)

    def create(self) -> None:
        for ns in (self.host, self.task, self.off):
            run("ip", "netns", "add", ns)
            self.ip(ns, "link", "set", "lo", "up")
        h, t, o = self.host, self.task, self.off
        self.ns(h, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
        # What ecs-host.nix sets (boot.kernel.sysctl), as ecs-init's engine.go PreStart does.
        self.ns(h, "sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1")
        # docker0 with one bridge-mode task.
        self.ip(h, "link", "add", "docker0", "type", "bridge")
        self.ip(h, "addr", "add", f"{BRIDGE4}/16", "dev", "docker0")
        self.ip(h, "addr", "add", f"{BRIDGE6}/64", "dev", "docker0", "nodad")
        self.ip(h, "link", "set", "docker0", "up")
        self.ip(h, "link", "add", "veth0", "type", "veth", "peer", "name", "eth0", "netns", t)
        self.ip(h, "link", "set", "veth0", "master", "docker0", "up")
        self.ip(t, "addr", "add", f"{TASK4}/16", "dev", "eth0")
        self.ip(t, "addr", "add", f"{TASK6}/64", "dev", "eth0", "nodad")
        self.ip(t, "link", "set", "eth0", "up")
        self.ip(t, "route", "add", "default", "via", BRIDGE4)
        self.ip(t, "-6", "route", "add", "default", "via", BRIDGE6)
        # The host's external interface and another machine, which also holds the IMDS address.
        self.ip(h, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", o)
        self.ip(h, "addr", "add", f"{HOST4}/24", "dev", "eth0")
        self.ip(h, "addr", "add", f"{HOST6}/64", "dev", "eth0", "nodad")
        self.ip(h, "link", "set", "eth0", "up")
        # Its gateway, as on EC2: IMDS (and TMDS's 169.254.170.2) is routed, not local.
        self.ip(h, "route", "add", "default", "via", OFF4)
        self.ip(h, "-6", "route", "add", "default", "via", OFF6)
        self.ip(o, "addr", "add", f"{OFF4}/24", "dev", "eth0")
        self.ip(o, "addr", "add", f"{OFF6}/64", "dev", "eth0", "nodad")
        self.ip(o, "addr", "add", f"{IMDS}/32", "dev", "lo")
        self.ip(o, "addr", "add", f"{IMDS6}/128", "dev", "lo")
        self.ip(o, "link", "set", "eth0", "up")
        self.ip(o, "route", "add", "172.17.0.0/16", "via", HOST4)
        self.ip(o, "-6", "route", "add", "fd00:d0c::/64", "via", HOST6)

    def listen(self, ns: str, host: str, port: int, token: str) -> None:
        process = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", SERVER, host, str(port), token],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.listeners.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == "ready", f"listener {host}:{port} in {ns}: {process.stderr.read()}"

    def start_services(self) -> None:
        self.listen(self.host, "127.0.0.1", 51679, CREDENTIALS)
        self.listen(self.host, "0.0.0.0", 51678, INTROSPECTION4)
        self.listen(self.host, "::", 51678, INTROSPECTION6)
        self.listen(self.off, IMDS, 80, METADATA)
        self.listen(self.off, IMDS6, 80, METADATA6)

    def probe(self, ns: str, *targets: tuple[str, int]) -> dict[tuple[str, int], str]:
        keys = [f"{host} {port}" for host, port in targets]
        out = self.ns(ns, sys.executable, "-c", CLIENT, str(PROBE_TIMEOUT), *keys)
        raw = json.loads(out)
        return {(host, port): raw[f"{host} {port}"] for host, port in targets}

    def firewall(self, kind: str, nft_extra: str) -> None:
        if kind == "iptables":
            script = IPTABLES_FIREWALL.format(ip="iptables -w", icmpv6="")
            script += IPTABLES_FIREWALL.format(
                ip="ip6tables -w", icmpv6="ip6tables -w -A nixos-fw -p icmpv6 -j nixos-fw-accept"
            )
            self.ns(self.host, "bash", "-ec", script)
        elif kind == "nftables":
            self.ns(self.host, "nft", "-f", "-", stdin=NFT_FIREWALL.format(extra=nft_extra))

    def destroy(self) -> None:
        for process in self.listeners:
            process.kill()
            process.wait(timeout=COMMAND_TIMEOUT)
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
        for ns in (self.host, self.task, self.off):
            run("ip", "netns", "delete", ns, check=False)


@pytest.fixture
def topology() -> Iterator[Topology]:
    require(os.geteuid() == 0, "network namespaces and netfilter need root")
    for tool in ("ip", "iptables", "ip6tables", "iptables-save", "ip6tables-save", "nft", "bash"):
        require_tool(tool)
    require_tool("nix-instantiate")
    topo = Topology()
    try:
        try:
            topo.create()
        except AssertionError as error:
            require(False, f"cannot build network namespaces here: {error}")
        topo.start_services()
        yield topo
    finally:
        topo.destroy()


def refused(answer: str) -> bool:
    return answer.startswith("error: ")


@pytest.mark.parametrize("firewall", FIREWALLS)
def test_default_rules(topology: Topology, firewall: str) -> None:
    """Defaults: TMDS/credentials reachable from the bridge, IMDS not; 51678 bridge-only."""
    rules = evaluate()
    topology.firewall(firewall, str(rules["nftInputRules"]))
    topology.ns(topology.host, "bash", "-c", str(rules["start"]))

    task = topology.probe(
        topology.task, (TMDS, 80), (IMDS, 80), (IMDS6, 80), (BRIDGE4, 51678), (BRIDGE6, 51678)
    )
    # Item 2: the DNAT to the agent passes the firewall, whichever it is.
    assert task[(TMDS, 80)] == CREDENTIALS, task
    # Item 13: containers do not get the instance role.
    assert refused(task[(IMDS, 80)]) and refused(task[(IMDS6, 80)]), task
    # Item 12: the introspection API answers the bridge, as current ecs-init allows...
    assert task[(BRIDGE4, 51678)] == INTROSPECTION4, task
    assert task[(BRIDGE6, 51678)] == INTROSPECTION6, task
    # ...but not another machine, over IPv4 or IPv6.
    off = topology.probe(topology.off, (HOST4, 51678), (HOST6, 51678))
    assert all(refused(answer) for answer in off.values()), off
    # The host keeps its own access: introspection on loopback, IMDS, and TMDS for host-network
    # tasks (nat OUTPUT REDIRECT).
    host = topology.probe(topology.host, ("127.0.0.1", 51678), (IMDS, 80), (IMDS6, 80), (TMDS, 80))
    assert host == {
        ("127.0.0.1", 51678): INTROSPECTION4,
        (IMDS, 80): METADATA,
        (IMDS6, 80): METADATA6,
        (TMDS, 80): CREDENTIALS,
    }, host


@pytest.mark.parametrize("firewall", FIREWALLS)
def test_options_open_what_they_say(topology: Topology, firewall: str) -> None:
    """allowContainerInstanceMetadata and allowOffhostIntrospection open exactly their port.

    Also shows the default test's refusals are the rules' doing, not an unreachable listener.
    """
    rules = evaluate(allowContainerInstanceMetadata=True, allowOffhostIntrospection=True)
    topology.firewall(firewall, str(rules["nftInputRules"]))
    topology.ns(topology.host, "bash", "-c", str(rules["start"]))

    task = topology.probe(topology.task, (TMDS, 80), (IMDS, 80), (IMDS6, 80))
    assert task == {(TMDS, 80): CREDENTIALS, (IMDS, 80): METADATA, (IMDS6, 80): METADATA6}, task
    off = topology.probe(topology.off, (HOST4, 51678), (HOST6, 51678))
    if firewall == "off":
        assert off == {(HOST4, 51678): INTROSPECTION4, (HOST6, 51678): INTROSPECTION6}, off
    else:
        # The host firewall still closes the port (it is not in allowedTCPPorts).
        assert all(refused(answer) for answer in off.values()), off


def test_without_the_accept_the_firewall_drops_task_requests(topology: Topology) -> None:
    """The iptables firewall model is strict enough to matter: without our DNAT accept, a
    bridge-mode task cannot reach the agent (the defect of item 2)."""
    rules = evaluate()
    start = str(rules["start"])
    accept = [line for line in start.splitlines() if "--ctorigdst" in line]
    assert len(accept) == 1, accept
    topology.firewall("iptables", "")
    topology.ns(topology.host, "bash", "-c", start.replace(accept[0], ""))
    task = topology.probe(topology.task, (TMDS, 80))
    assert refused(task[(TMDS, 80)]), task


def rule_lines(topology: Topology) -> list[str]:
    lines = []
    for save in ("iptables-save", "ip6tables-save"):
        out = topology.ns(topology.host, save)
        lines += [f"{save} {line}" for line in out.splitlines() if line.startswith("-A ")]
    return sorted(lines)


def test_unit_start_is_idempotent_and_stop_removes_the_rules(topology: Topology) -> None:
    rules = evaluate()
    before = rule_lines(topology)
    topology.ns(topology.host, "bash", "-c", str(rules["start"]))
    once = rule_lines(topology)
    topology.ns(topology.host, "bash", "-c", str(rules["start"]))
    assert rule_lines(topology) == once, "a second start added rules"
    ours = [line for line in once if line not in before]
    assert any("51679" in line for line in ours) and any("51678" in line for line in ours)

    topology.ns(topology.host, "bash", "-c", str(rules["stop"]))
    after = rule_lines(topology)
    # What stays is dockerd's: FORWARD's jump to DOCKER-USER (dockerd owns the chain).
    left = sorted(set(after) - set(before))
    assert all(line.endswith("-A FORWARD -j DOCKER-USER") for line in left), left
    for marker in ("51678", "51679", TMDS, IMDS, "fd00:ec2::254"):
        assert not any(marker in line for line in after), (marker, after)
    # Stopping twice is harmless too.
    topology.ns(topology.host, "bash", "-c", str(rules["stop"]))


def test_docker_user_rules_survive_dockerd_recreating_its_chains(topology: Topology) -> None:
    """dockerd at start keeps an existing DOCKER-USER and moves FORWARD's jump to it first
    (moby libnetwork firewall_linux.go arrangeUserFilterRule: NewChain + EnsureJumpRule, "Docker
    will not delete or modify any pre-existing rules from the DOCKER-USER filter chain"). Replayed
    with the same commands: the block holds whichever of the unit and dockerd starts first."""
    rules = evaluate()
    topology.ns(topology.host, "bash", "-c", str(rules["start"]))
    dockerd = """
    iptables -w -N DOCKER-USER 2>/dev/null || true
    iptables -w -D FORWARD -j DOCKER-USER 2>/dev/null || true
    iptables -w -I FORWARD -j DOCKER-USER
    iptables -w -N DOCKER-FORWARD 2>/dev/null || true
    iptables -w -A FORWARD -j DOCKER-FORWARD
    iptables -w -A DOCKER-FORWARD -i docker0 -j ACCEPT
    """
    topology.ns(topology.host, "bash", "-ec", dockerd)
    task = topology.probe(topology.task, (IMDS, 80))
    assert refused(task[(IMDS, 80)]), task


def test_rules_follow_ecs_init() -> None:
    """The rule arguments are ecs-init's (aws/amazon-ecs-agent v1.105.0,
    ecs-init/exec/iptables/iptables.go get*ChainArgs), and nothing depends on the default route."""
    require_tool("nix-instantiate")
    rules = evaluate()["rules"]
    assert isinstance(rules, list)
    as_text = [
        f"{r['family']} {r['table']} {r['action']} {r['chain']} {' '.join(r['args'])}"
        for r in rules
    ]
    for expected in [
        "v4 nat -A PREROUTING -p tcp -d 169.254.170.2 --dport 80 -j DNAT --to-destination 127.0.0.1:51679",
        "v4 nat -A OUTPUT -p tcp -d 169.254.170.2 --dport 80 -j REDIRECT --to-ports 51679",
        "v4 filter -I INPUT --dst 127.0.0.0/8 ! --src 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
        "both filter -I INPUT -p tcp --dport 51678 ! -i lo -j DROP",
        "both filter -I INPUT -p tcp --dport 51678 -i docker0 -j ACCEPT",
    ]:
        assert expected in as_text, (expected, as_text)
    # ecs-init inserts the drop before the docker0 accept, so the accept ends up first.
    drop = as_text.index("both filter -I INPUT -p tcp --dport 51678 ! -i lo -j DROP")
    accept = as_text.index("both filter -I INPUT -p tcp --dport 51678 -i docker0 -j ACCEPT")
    assert drop < accept
    start = str(evaluate()["start"])
    assert "route" not in start and "eth0" not in start


@pytest.mark.parametrize("filtered", [True, False])
def test_localhost_traffic_filter(topology: Topology, filtered: bool) -> None:
    """route_localnet would let another machine reach loopback services (the agent's
    credentials on 127.0.0.1:51679); ecs-init's localhost filter drops that, DNAT'd task requests
    excepted. The other machine is made to send to 127.0.0.1 through the host (its own loopback
    route removed), as an attacker on the subnet could; firewall off, the filter alone decides."""
    rules = evaluate(localhostTrafficFilter=filtered)
    topology.ns(topology.host, "bash", "-c", str(rules["start"]))
    o = topology.off
    topology.ns(o, "sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1")
    topology.ns(o, "sysctl", "-qw", "net.ipv4.conf.eth0.route_localnet=1")
    topology.ip(o, "addr", "del", "127.0.0.1/8", "dev", "lo")
    topology.ip(o, "route", "add", "127.0.0.1/32", "via", HOST4, "dev", "eth0")
    off = topology.probe(o, ("127.0.0.1", 51679))
    if filtered:
        assert refused(off[("127.0.0.1", 51679)]), off
    else:
        assert off[("127.0.0.1", 51679)] == CREDENTIALS, off
    # Either way the task still reaches the agent through the DNAT.
    task = topology.probe(topology.task, (TMDS, 80))
    assert task[(TMDS, 80)] == CREDENTIALS, task


def test_iptables_firewall_started_after_our_rules_keeps_them_first(topology: Topology) -> None:
    """firewall-iptables.nix's start (also run by its reload) appends `-A INPUT -j nixos-fw`, so
    rules our unit inserted earlier stay ahead of it: the order of the two units does not matter."""
    rules = evaluate()
    topology.ns(topology.host, "bash", "-c", str(rules["start"]))
    topology.firewall("iptables", "")
    task = topology.probe(topology.task, (TMDS, 80), (BRIDGE4, 51678))
    assert task == {(TMDS, 80): CREDENTIALS, (BRIDGE4, 51678): INTROSPECTION4}, task
