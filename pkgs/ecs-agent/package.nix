# The ECS agent the host runs, pinned to the release whose source the
# generated variable table (modules/agent-vars.json, tools/src/nixecs/
# agent_vars.py) and every "v1.105.0 ..." citation in modules/ and tools/ were
# read from. nixos-25.11's own `ecs-agent` is older (nixpkgs
# pkgs/by-name/ec/ecs-agent/package.nix carried 1.100.0-1.101.x on that
# branch; v1.105.0 was released in June 2026, after the pinned revision), so a
# variable added since (e.g. ECS_PROPAGATE_TASK_MEMORY_LIMIT_CGROUPV2) would be
# silently ignored by it. Same build as nixpkgs' (buildGoModule, vendored
# modules, modRoot ./agent), new version and source only; v1.105.0's
# agent/go.mod needs Go 1.25, nixos-25.11's default.
# tools/tests/test_agent_settings.py fails when this version and the table's
# AGENT_REF differ: bump both with tools/gen_agent_vars.py.
{ ecs-agent, fetchFromGitHub }:
ecs-agent.overrideAttrs (_: rec {
  version = "1.105.0";
  src = fetchFromGitHub {
    owner = "aws";
    repo = "amazon-ecs-agent";
    rev = "v${version}";
    # The hash nixpkgs records for this tag (pkgs/by-name/ec/ecs-agent/package.nix
    # at 1.105.0, on a later nixpkgs branch than the pin), not recomputed here:
    # a git mirror of aws/amazon-ecs-agent has the tag (v1.105.0 = commit
    # 08583c3f44312c6c6a63bc6bde1bbe44b7f3d2c2), but its snapshot lacks the
    # blobs of files of 4 MiB and more, and the tag's tree (12,595 files, no
    # top-level .gitattributes) has three: agent/handlers.test (a committed
    # test binary, 5a33dae8) and aws-sdk-go-v2's service/ec2/deserializers.go
    # under agent/vendor and ecs-agent/vendor (08427909). `git archive` of the
    # tag therefore fails, and `nix hash path` of the unpacked tree (what
    # fetchFromGitHub hashes) could not be taken. The first build checks it.
    hash = "sha256-mrhy5rc248ZfGQESEAeQZgJkXAMqCdCo8IqL+5erlik=";
  };
})
