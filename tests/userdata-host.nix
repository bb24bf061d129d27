# `nix` userdata on a team's own host: the host is built from a template-style user flake
# (templates/fleet: nixecs' profile plus hosts/web.nix, whose change is a TCP keepalive
# sysctl), recorded in the image as lib.mkHost records it (lib/record.nix), and the group's
# userdata is the module `nixecs render` writes for the template's fleet.yml (it imports
# <nixecs-host>). After the boot-time
# switch the new configuration still has the team's change, adds the group's, and records the
# same host again.
#
# As in userdata-nix.nix, the switch itself is injected (nixecs.userdata.rebuildCommand):
# building a whole NixOS system inside the VM would need its build closure. The injected
# command evaluates the new configuration exactly as `nixos-rebuild` would (<nixpkgs/nixos>
# with NIXOS_CONFIG, the unit's NIX_PATH, offline) and writes what the test checks.
#
# The VM runs the test node profile (tests/lib/node.nix, not the amazon image) plus the team's
# file; it records the profile a real image records, nixecs' hosts/ecs-node, and the team's file.
{ lib, pkgs, ... }:
let
  # The user's flake, as a flake input is: a store path named "source".
  userFlake = builtins.path {
    path = ../templates/fleet;
    name = "source";
  };
  webHost = userFlake + "/hosts/web.nix";
  record = import ../lib/record.nix { inherit lib; };

  # What `nixos-rebuild switch` evaluates: the configuration nixecs apply wrote.
  rebuild = pkgs.writeShellScript "evaluate-rebuild" ''
    set -eu
    nix-instantiate --eval --strict --json -E '
      let
        c = (import <nixpkgs/nixos> { }).config; # NIXOS_CONFIG, set by nixecs apply
      in {
        keepalive = c.boot.kernel.sysctl."net.ipv4.tcp_keepalive_time" or null;
        backlog = c.boot.kernel.sysctl."net.core.somaxconn" or null;
        cluster = c.nixecs.ecs.cluster;
        host = c.nixecs.host.name;
        sameHost = c.nixecs.host.text == builtins.readFile <nixecs-host>;
      }' > /var/lib/rebuilt.json
  '';

in
{
  name = "nixecs-userdata-host";

  nodes.machine =
    { ... }:
    {
      imports = [
        ./lib/node.nix
        # The same file as webHost (imported from the checkout: evaluation without a store,
        # as nixeval does, cannot read the copy).
        ../templates/fleet/hosts/web.nix
        (record {
          name = "web";
          src = userFlake;
          modules = [
            ../hosts/ecs-node
            webHost
          ];
        })
      ];

      nixecs.userdata.rebuildCommand = "${rebuild}";
      # templates/fleet/fleet.yml's prod/web group, as `nixecs render` writes it
      # (tools/tests/test_user_flake.py renders it again and compares).
      testing.fakeImds.userdata = builtins.readFile ./lib/template-web-userdata.nix;

      # Evaluating a NixOS configuration needs memory.
      virtualisation.memorySize = 3072;

      # A stand-in for the agent: a long-running process under the real unit.
      systemd.services.ecs-agent.script = lib.mkForce "exec ${pkgs.coreutils}/bin/sleep infinity";
    };

  testScript = ''
    import json

    machine.wait_for_unit("nixecs-userdata.service")

    with subtest("the image runs the team's host"):
        assert machine.succeed("sysctl -n net.ipv4.tcp_keepalive_time").strip() == "300"
        host = machine.succeed(
            "env $(systemctl show -p Environment --value nixecs-userdata.service | tr ' ' '\\n' | grep ^NIX_PATH=) "
            "nix-instantiate --find-file nixecs-host"
        ).strip()
        machine.succeed(f"grep -q hosts/web.nix {host}")
        machine.succeed(f"cmp {host} /etc/nixecs/host.nix")

    with subtest("after the switch the configuration still has the team's change"):
        rebuilt = json.loads(machine.succeed("cat /var/lib/rebuilt.json"))
        assert rebuilt["keepalive"] == 300, rebuilt  # hosts/web.nix
        assert rebuilt["backlog"] == 4096, rebuilt  # the group's nixos: text
        assert rebuilt["cluster"] == "prod", rebuilt
        assert rebuilt["host"] == "web", rebuilt
        assert rebuilt["sameHost"] is True, rebuilt  # it records the very same host

    with subtest("the agent starts after the apply"):
        machine.wait_for_unit("ecs-agent.service")
  '';
}
