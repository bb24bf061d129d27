# ECS Exec (issue 22, item 3): with nixecs.ecs.exec.enable the host has the
# managed-agent layout the ECS agent checks before it advertises
# `execute-command` (modules/ecs-exec.nix cites the agent's source), checked
# here the way the agent checks it, and the SSM binaries run inside a
# container that holds nothing else (static, no store paths). A host without
# the option has none of it.
#
# Not checked here: the capability list itself. The agent computes it when it
# registers with ECS, which this VM (no AWS endpoint, no instance metadata)
# cannot reach.
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
    plain =
      { ... }:
      {
        imports = [ ../modules ];
        nixecs.ecs.enable = true;
        virtualisation.memorySize = 1024;
      };
  };

  testScript = ''
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

    with subtest("a host without the option has none of it"):
        plain.wait_for_unit("systemd-tmpfiles-setup.service")
        plain.fail("test -e /managed-agents")
        plain.fail("test -e /var/lib/ecs/deps/execute-command")
        plain.fail("test -e /log/exec")
  '';
}
