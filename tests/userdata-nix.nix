# `nix` userdata: nixecs apply writes /etc/nixos/configuration.nix and
# rebuilds exactly once per content hash, recording the hash only on
# success. The rebuild itself is injected (nixecs.userdata.rebuildCommand):
# a full nixos-rebuild switch inside the test VM would need the whole build
# closure of a NixOS system; instead the test checks that the written
# configuration evaluates offline with the pinned NIX_PATH.
{ pkgs, ... }:
let
  rebuild = pkgs.writeShellScript "fake-rebuild" ''
    set -eu
    sum=$(sha256sum /etc/nixos/configuration.nix | cut -d' ' -f1)
    echo "$sum" >> /var/lib/rebuild-attempts
    if grep -q FAIL-REBUILD /etc/nixos/configuration.nix; then
      echo "fake rebuild fails on purpose" >&2
      exit 1
    fi
    echo "$sum" >> /var/lib/rebuilds
  '';
  userdata = cluster: ''
    # nixecs-userdata v1 cluster=${cluster} group=web
    { ... }:
    {
      imports = [ <nixecs/hosts/ecs-node> ];
      nixecs.ecs.cluster = "${cluster}";
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
        machine.fail("systemctl restart nixecs-userdata.service")
        machine.fail("systemctl restart nixecs-userdata.service")
        assert count("/var/lib/rebuild-attempts") == attempts + 2
        assert count("/var/lib/rebuilds") == 2
  '';
}
