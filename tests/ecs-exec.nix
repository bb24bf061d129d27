# ECS Exec (issue 22, item 3): with nixecs.ecs.exec.enable the host has the
# managed-agent layout the ECS agent checks before it advertises
# `execute-command` (modules/ecs-exec.nix cites the agent's source), checked
# here the way the agent checks it, and the SSM binaries run inside a
# container that holds nothing else (static, no store paths). A host without
# the option has none of it.
#
# The capability list is the agent's own: `agent -ecs-attributes` prints what
# it would register with (aws/amazon-ecs-agent v1.105.0 agent/app/run.go,
# agent/app/agent.go printECSAttributes, the same capabilities() as
# registration), which needs neither ECS nor instance metadata
# (-blackhole-ec2-metadata, the region from AWS_DEFAULT_REGION).
{ ... }:
{
  name = "ecs-exec";

  nodes = {
    exec =
      { ... }:
      {
        imports = [ ../modules ];
        nixecs.ecs.enable = true;
        nixecs.ecs.exec.enable = true;
        virtualisation.memorySize = 1536;
        virtualisation.diskSize = 4096;
      };
    plain = ./lib/plain-ecs-node.nix;
  };

  # A function, so that the agent's store path can be named.
  testScript =
    { nodes, ... }:
    let
      attributes =
        node:
        "env AWS_DEFAULT_REGION=us-east-1 ECS_DATADIR=/tmp/ecs-attributes ECS_CHECKPOINT=false "
        + "${node.services.ecs-agent.package}/bin/agent -ecs-attributes -blackhole-ec2-metadata";
    in
    ''
    import re

    start_all()
    exec.wait_for_unit("docker.service")
    exec.wait_for_unit("systemd-tmpfiles-setup.service")

    with subtest("the layout the agent checks (agent_capability.go appendExecCapabilities)"):
        root = "/managed-agents/execute-command"
        for sub in ["bin", "config", "certs"]:
            exec.succeed(f"test -d {root}/{sub}")
        exec.succeed(f"test -s {root}/certs/tls-ca-bundle.pem")
        # Version directories: real directories named like a version.
        versions = [
            v for v in exec.succeed(f"find {root}/bin/ -mindepth 1 -maxdepth 1 -type d -printf '%f\\n'").split()
            if re.fullmatch(r"\d+(\.\d+)*", v)
        ]
        assert len(versions) == 1, versions
        version = versions[0]
        for name in ["amazon-ssm-agent", "ssm-agent-worker", "ssm-session-worker"]:
            exec.succeed(f"test -x {root}/bin/{version}/{name}")
        # The host path the agent bind-mounts from is the same directory.
        assert exec.succeed(f"readlink -f {root}").strip() == "/var/lib/ecs/deps/execute-command"
        assert exec.succeed("readlink -f /log/exec").strip() == "/var/log/ecs/exec"

    with subtest("the binaries run in a container that has nothing else"):
        exec.succeed(
            "tar -C /var/lib/ecs/deps/execute-command/bin/" + version
            + " --owner=0 --group=0 -chf /tmp/ssm.tar . && docker import /tmp/ssm.tar ssm-only"
        )
        out = exec.succeed("docker run --rm --network none ssm-only /amazon-ssm-agent --version")
        assert version in out, out

    with subtest("a version directory of an earlier configuration is removed"):
        exec.succeed("mkdir -p " + root + "/bin/99.0.0.0 && systemctl restart ecs-agent.service")
        exec.fail("test -e " + root + "/bin/99.0.0.0")
        exec.succeed(f"test -x {root}/bin/{version}/amazon-ssm-agent")

    with subtest("the agent advertises execute-command"):
        exec.succeed("systemctl stop ecs-agent.service")
        attrs = exec.succeed("${attributes nodes.exec}")
        print(attrs)
        assert "ecs.capability.execute-command" in attrs.split(), "execute-command not advertised"

    with subtest("a host without the option has none of it"):
        plain.wait_for_unit("docker.service")
        plain.wait_for_unit("systemd-tmpfiles-setup.service")
        plain.fail("test -e /managed-agents")
        plain.fail("test -e /var/lib/ecs/deps/execute-command")
        plain.fail("test -e /log/exec")
        plain.succeed("systemctl stop ecs-agent.service")
        attrs = plain.succeed("${attributes nodes.plain}")
        # The same command lists capabilities here (one the agent always has:
        # nameOnlyAttributes, agent_capability.go), only not this one.
        assert "ecs.capability.secrets.ssm.environment-variables" in attrs.split(), attrs
        assert "ecs.capability.execute-command" not in attrs.split(), attrs
  '';
}
