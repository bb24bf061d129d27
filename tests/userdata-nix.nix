# `nix` userdata: nixecs apply writes /etc/nixos/configuration.nix and
# rebuilds exactly once per content hash, recording the hash only on
# success. The rebuild itself is injected (nixecs.userdata.rebuildCommand):
# a full nixos-rebuild switch inside the test VM would need the whole build
# closure of a NixOS system; instead the test checks that the written
# configuration evaluates offline with the pinned NIX_PATH.
#
# The fake rebuild does to systemd what `switch-to-configuration switch` does
# with a configuration that adds a service (pkgs/by-name/sw/switch-to-configuration-ng/
# src/src/main.rs, nixpkgs 00401fd7): the new unit and its multi-user.target.wants
# link appear, systemd reloads, and only the targets that are active are
# started. At boot multi-user.target is not active yet (nixecs-userdata runs
# before it), so the service starts on this boot only through nixecs-userdata's
# own step (modules/userdata.nix, startPendingTargets).
#
# The ECS agent is a stand-in (the real one needs AWS): what is tested is its
# unit's relation to nixecs-userdata.
{ lib, pkgs, ... }:
let
  # What the userdata's systemd.services.userdata-added renders to, near enough:
  # a oneshot that records the boot it ran in.
  addedUnit = pkgs.writeText "userdata-added.service" ''
    [Unit]
    Description=A service added by nix userdata

    [Service]
    Type=oneshot
    RemainAfterExit=true
    ExecStart=${pkgs.bash}/bin/sh -c "cat /proc/sys/kernel/random/boot_id > /run/userdata-added"
  '';
  rebuild = pkgs.writeShellScript "fake-rebuild" ''
    set -eu
    sum=$(sha256sum /etc/nixos/configuration.nix | cut -d' ' -f1)
    echo "$sum" >> /var/lib/rebuild-attempts
    if grep -q FAIL-REBUILD /etc/nixos/configuration.nix; then
      echo "fake rebuild fails on purpose" >&2
      exit 1
    fi
    if grep -q userdata-added /etc/nixos/configuration.nix; then
      mkdir -p /run/systemd/system/multi-user.target.wants
      cp ${addedUnit} /run/systemd/system/userdata-added.service
      ln -sf ../userdata-added.service /run/systemd/system/multi-user.target.wants/
    fi
    systemctl daemon-reload
    active=$(systemctl list-units --type=target --state=active --no-legend --plain | cut -d' ' -f1)
    # --no-block, unlike the real switch (which waits for these jobs): when this runs
    # inside a restart of nixecs-userdata, multi-user.target's start job would wait for
    # that very job.
    # shellcheck disable=SC2086
    systemctl --no-block start $active
    echo "$sum" >> /var/lib/rebuilds
  '';
  userdata = cluster: ''
    # nixecs-userdata v1 cluster=${cluster} group=web
    { ... }:
    {
      imports = [ <nixecs/hosts/ecs-node> ];
      nixecs.ecs.cluster = "${cluster}";
      systemd.services.userdata-added = {
        wantedBy = [ "multi-user.target" ];
        serviceConfig.Type = "oneshot";
        script = "true";
      };
    }
  '';
in
{
  name = "nixecs-userdata-nix";

  nodes.machine =
    { ... }:
    {
      imports = [ ./lib/node.nix ];

      nixecs.userdata.rebuildCommand = "${rebuild}";
      testing.fakeImds.userdata = userdata "blue";

      # Evaluating a NixOS configuration needs memory.
      virtualisation.memorySize = 3072;

      # A stand-in for the agent: a long-running process under the real unit.
      systemd.services.ecs-agent.script = lib.mkForce "exec ${pkgs.coreutils}/bin/sleep infinity";
    };

  testScript = ''
    green = """${userdata "green"}"""

    def serve(userdata):
        machine.succeed(f"cat > /run/fake-imds/user-data <<'EOF'\n{userdata}EOF")
        machine.succeed("systemctl restart fake-imds.service")

    def count(path):
        return int(machine.succeed(f"cat {path} 2>/dev/null | wc -l").strip())

    machine.wait_for_unit("nixecs-userdata.service")

    with subtest("the first boot writes the configuration and rebuilds once"):
        machine.succeed("grep -q 'nixecs.ecs.cluster = \"blue\";' /etc/nixos/configuration.nix")
        assert count("/var/lib/rebuilds") == 1

    with subtest("a service the userdata adds starts on the same boot"):
        machine.wait_for_unit("userdata-added.service")
        boot = machine.succeed("cat /proc/sys/kernel/random/boot_id")
        assert machine.succeed("cat /run/userdata-added") == boot

    with subtest("the apply is bounded in time"):
        timeout = machine.succeed("systemctl show -p TimeoutStartUSec --value nixecs-userdata.service").strip()
        assert timeout == "35min", timeout

    with subtest("the agent starts after a successful apply"):
        machine.wait_for_unit("ecs-agent.service")
        machine.succeed("test -e /run/nixecs/userdata-applied")

    with subtest("the configuration evaluates offline with the pinned NIX_PATH"):
        nix_path = machine.succeed("systemctl show -p Environment --value nixecs-userdata.service")
        assert "nixecs=/nix/store/" in nix_path and "nixpkgs=/nix/store/" in nix_path, nix_path
        cluster = machine.succeed(
            "env $(systemctl show -p Environment --value nixecs-userdata.service | tr ' ' '\\n' | grep ^NIX_PATH=) "
            "nix-instantiate --eval --strict -E "
            "'(import <nixpkgs/nixos> { configuration = /etc/nixos/configuration.nix; }).config.nixecs.ecs.cluster'"
        ).strip()
        assert cluster == '"blue"', cluster

    with subtest("the same content never rebuilds again"):
        machine.succeed("systemctl restart nixecs-userdata.service")
        assert count("/var/lib/rebuilds") == 1
        machine.shutdown()
        machine.start()
        machine.wait_for_unit("nixecs-userdata.service")
        assert count("/var/lib/rebuilds") == 1

    with subtest("new content rebuilds once"):
        serve(green)
        machine.succeed("systemctl restart nixecs-userdata.service")
        machine.succeed("grep -q 'nixecs.ecs.cluster = \"green\";' /etc/nixos/configuration.nix")
        assert count("/var/lib/rebuilds") == 2
        machine.succeed("systemctl restart nixecs-userdata.service")
        assert count("/var/lib/rebuilds") == 2

    with subtest("a failed rebuild is retried: its hash is not recorded"):
        serve(green + "# FAIL-REBUILD\n")
        attempts = count("/var/lib/rebuild-attempts")
        agent_pid = machine.succeed("systemctl show -p MainPID --value ecs-agent.service").strip()
        machine.fail("systemctl restart nixecs-userdata.service")
        machine.fail("systemctl restart nixecs-userdata.service")
        assert count("/var/lib/rebuild-attempts") == attempts + 2
        assert count("/var/lib/rebuilds") == 2

    with subtest("a failed re-apply leaves the agent running, not restarted"):
        machine.succeed("systemctl is-active ecs-agent.service")
        pid = machine.succeed("systemctl show -p MainPID --value ecs-agent.service").strip()
        assert pid == agent_pid and pid != "0", (agent_pid, pid)
        machine.succeed("systemctl stop nixecs-userdata.service")
        machine.succeed("systemctl is-active ecs-agent.service")

    with subtest("without an apply on this boot the agent does not start"):
        machine.succeed("rm /run/nixecs/userdata-applied")
        machine.fail("systemctl restart ecs-agent.service")
        machine.fail("systemctl is-active ecs-agent.service")
        journal = machine.succeed("journalctl -b -u ecs-agent.service")
        assert "has not been applied on this boot" in journal, journal
  '';
}
