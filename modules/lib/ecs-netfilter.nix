# The netfilter rules of an ECS container instance, as a pure function so
# that modules/ecs-host.nix and tools/tests/test_netns.py use the same text:
# the test evaluates this file with real Nix and runs the very scripts the
# `nixecs-ecs-netfilter` unit runs, in network namespaces.
#
# Upstream: aws/amazon-ecs-agent v1.105.0 (08583c3f; unchanged at 8dfceca6),
#   ecs-init/exec/iptables/iptables.go  NetfilterRoute.Create/Remove and the
#                                       get*ChainArgs functions (the rules)
#   ecs-init/engine/engine.go           New/PreStart: the rules and
#                                       route_localnet are always installed,
#                                       whatever ECS_ENABLE_TASK_IAM_ROLE says
#   ecs-init/docker/docker.go           FindDefaultBridgeNetworkInterfaceName:
#                                       the bridge the introspection accept
#                                       names is the default bridge network's
#                                       interface (docker0 unless dockerd's
#                                       `bridge` setting names another)
#
# Only builtins, no nixpkgs lib: the test evaluates this file with plain
# `nix-instantiate`, where no nixpkgs is at hand.
{
  # Interface of Docker's default bridge network (bridge-mode tasks).
  bridge ? "docker0",
  # ecs-init's localhost traffic filter (skipped by
  # ECS_SKIP_LOCALHOST_TRAFFIC_FILTER).
  localhostTrafficFilter ? true,
  # ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS.
  allowOffhostIntrospection ? false,
  # Whether containers on Docker bridge networks may reach the instance
  # metadata service (and with it the instance role's credentials).
  allowContainerInstanceMetadata ? false,
  # Commands; the unit passes store paths, the test plain names.
  iptables ? "iptables",
  ip6tables ? "ip6tables",
}:
let
  optional = cond: x: if cond then [ x ] else [ ];
  optionals = cond: xs: if cond then xs else [ ];
  concatMapStrings = f: xs: builtins.concatStringsSep "" (map f xs);
  reverseList =
    xs:
    let
      n = builtins.length xs;
    in
    builtins.genList (i: builtins.elemAt xs (n - 1 - i)) n;
  # As nixpkgs' lib.escapeShellArg: bare when safe, else single-quoted.
  escapeShellArg =
    arg:
    if builtins.match "[[:alnum:],._+:@%/-]+" arg != null then
      arg
    else
      "'${builtins.replaceStrings [ "'" ] [ "'\\''" ] arg}'";
  escapeShellArgs = xs: builtins.concatStringsSep " " (map escapeShellArg xs);

  v4 = "v4";
  v6 = "v6";
  both = "both";

  # Order matters where a rule is inserted (-I): like ecs-init, each insert
  # goes to the top, so the last inserted rule of a chain is matched first.
  # `family = both` is ecs-init's `useIp6tables = true` (same arguments given
  # to ip6tables when /proc/sys/net/ipv6 exists).
  rules =
    [
      # getPreroutingChainArgs: bridge-mode tasks' requests to the task
      # metadata / credentials endpoint go to the agent on loopback.
      {
        family = v4;
        table = "nat";
        chain = "PREROUTING";
        action = "-A";
        args = [
          "-p" "tcp" "-d" "169.254.170.2" "--dport" "80"
          "-j" "DNAT" "--to-destination" "127.0.0.1:51679"
        ];
      }
      # getOutputChainArgs: the same for host-network tasks.
      {
        family = v4;
        table = "nat";
        chain = "OUTPUT";
        action = "-A";
        args = [
          "-p" "tcp" "-d" "169.254.170.2" "--dport" "80"
          "-j" "REDIRECT" "--to-ports" "51679"
        ];
      }
    ]
    # getLocalhostTrafficFilterInputChainArgs: route_localnet must not expose
    # loopback services to the network; DNAT'd packets are let through.
    ++ optional localhostTrafficFilter {
      family = v4;
      table = "filter";
      chain = "INPUT";
      action = "-I";
      args = [
        "--dst" "127.0.0.0/8" "!" "--src" "127.0.0.0/8"
        "-m" "conntrack" "!" "--ctstate" "RELATED,ESTABLISHED,DNAT" "-j" "DROP"
      ];
    }
    ++ optionals (!allowOffhostIntrospection) [
      # getBlockIntrospectionOffhostAccessInputChainArgs: the introspection
      # API only on loopback (IPv4 and IPv6)...
      {
        family = both;
        table = "filter";
        chain = "INPUT";
        action = "-I";
        args = [ "-p" "tcp" "--dport" "51678" "!" "-i" "lo" "-j" "DROP" ];
      }
      # allowIntrospectionForDockerIptablesInputChainArgs: ...and the default
      # bridge, inserted after the drop so that it is matched first.
      {
        family = both;
        table = "filter";
        chain = "INPUT";
        action = "-I";
        args = [ "-p" "tcp" "--dport" "51678" "-i" bridge "-j" "ACCEPT" ];
      }
    ]
    ++ [
      # Not in ecs-init (the ECS-optimized AMI has no host firewall): accept
      # exactly the DNAT'd task metadata / credentials requests from the
      # bridge before a host firewall's INPUT chain (nixos-fw trusts only lo
      # and would drop them: they arrive on the bridge in state NEW).
      {
        family = v4;
        table = "filter";
        chain = "INPUT";
        action = "-I";
        args = [
          "-i" bridge "-p" "tcp" "-d" "127.0.0.1" "--dport" "51679"
          "-m" "conntrack" "--ctstate" "DNAT"
          "--ctorigdst" "169.254.170.2" "--ctorigdstport" "80" "-j" "ACCEPT"
        ];
      }
    ]
    # Not in ecs-init: containers must not get the instance role from the
    # instance metadata service. DOCKER-USER is the chain dockerd leaves to
    # the administrator: it creates it only when missing, never flushes it,
    # and keeps FORWARD's jump to it first. Forwarded traffic only: the host
    # itself (OUTPUT) and host-network tasks keep IMDS.
    ++ optionals (!allowContainerInstanceMetadata) [
      {
        family = v4;
        table = "filter";
        chain = "DOCKER-USER";
        action = "-I";
        args = [ "-d" "169.254.169.254/32" "-j" "DROP" ];
      }
      {
        family = v6;
        table = "filter";
        chain = "DOCKER-USER";
        action = "-I";
        args = [ "-d" "fd00:ec2::254/128" "-j" "DROP" ];
      }
    ];

  # The same accepts for a host whose firewall is nftables-based: a packet
  # accepted by an iptables(-nft) table still meets the `inet nixos-fw` input
  # chain (policy drop), so they must be inside it: NixOS appends
  # networking.firewall.extraInputRules to its `input-allow` chain, reached
  # for `ct state new` (nixpkgs nixos/modules/services/networking/
  # firewall-nftables.nix, 040b4eb6). With either firewall the bridge then
  # reaches exactly what it reaches without one.
  nftInputRules = ''
    iifname "${bridge}" ip daddr 127.0.0.1 tcp dport 51679 ct status dnat ct original ip daddr 169.254.170.2 ct original proto-dst 80 accept comment "ECS task metadata and credentials (169.254.170.2:80)"
  ''
  + (
    if allowOffhostIntrospection then
      ""
    else
      ''
        iifname "${bridge}" tcp dport 51678 accept comment "ECS agent introspection from the Docker bridge, as ecs-init allows"
      ''
  );

  commands =
    r:
    optional (r.family != v6) iptables ++ optional (r.family != v4) ip6tables;

  # ecs-init runs ip6tables only when /proc/sys/net/ipv6 exists
  # (checkIpv6KernelConfigExist).
  guard = cmd: line: if cmd == ip6tables then "[ ! -d /proc/sys/net/ipv6 ] || { ${line}; }\n" else "${line}\n";

  # Idempotent: added only when missing, so restarting never duplicates.
  add =
    r:
    concatMapStrings (
      cmd:
      guard cmd "${cmd} -w -t ${r.table} -C ${r.chain} ${escapeShellArgs r.args} 2>/dev/null || ${cmd} -w -t ${r.table} ${r.action} ${r.chain} ${escapeShellArgs r.args}"
    ) (commands r);
  remove =
    r:
    concatMapStrings (
      cmd:
      guard cmd "while ${cmd} -w -t ${r.table} -C ${r.chain} ${escapeShellArgs r.args} 2>/dev/null; do ${cmd} -w -t ${r.table} -D ${r.chain} ${escapeShellArgs r.args}; done"
    ) (commands r);

  # dockerd creates DOCKER-USER and FORWARD's jump when it starts; creating
  # them first (when missing) lets the unit run before dockerd, so the
  # block holds from the first container on. dockerd keeps an existing chain
  # and its rules. Both stay on stop: dockerd owns them.
  dockerUserChain = concatMapStrings (
    cmd:
    guard cmd "${cmd} -w -t filter -L DOCKER-USER -n >/dev/null 2>&1 || ${cmd} -w -t filter -N DOCKER-USER; ${cmd} -w -t filter -C FORWARD -j DOCKER-USER 2>/dev/null || ${cmd} -w -t filter -I FORWARD -j DOCKER-USER"
  ) [ iptables ip6tables ];
  usesDockerUser = builtins.any (r: r.chain == "DOCKER-USER") rules;
in
{
  inherit rules nftInputRules;

  # Shell text for the unit's script (start) and preStop (stop).
  start =
    "set -e\n"
    + (if usesDockerUser then dockerUserChain else "")
    + concatMapStrings add rules;
  stop = "set -e\n" + concatMapStrings remove (reverseList rules);
}
