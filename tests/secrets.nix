# Secrets from SSM Parameter Store. No SSM endpoint is reachable here, so the
# test checks what the tool is given and when it runs: the secrets list, the
# unit's command and its ordering between userdata and the agent.
{ ... }:
{
  name = "nixecs-secrets";

  nodes.machine =
    { ... }:
    {
      imports = [ ./lib/secrets-machine.nix ];
    };

  testScript = ''
    import json

    machine.wait_for_unit("nixecs-userdata.service")

    with subtest("the secrets list for the tool"):
        secrets = json.loads(machine.succeed("cat /etc/nixecs/secrets.json"))
        assert secrets == [
            {"name": "db-password", "parameter": "/prod/db/password", "owner": "root", "group": "root", "mode": "0400", "path": "/run/nixecs/secrets/db-password"},
            {"name": "tls-key", "parameter": "/prod/tls/key", "owner": "nobody", "group": "nogroup", "mode": "0440", "path": "/run/nixecs/secrets/tls-key"},
        ], secrets

    with subtest("settings userdata secrets reach the tool through settings.json"):
        doc = json.loads(machine.succeed("cat /run/nixecs/settings.json"))
        assert doc["secrets"]["api-token"]["parameter"] == "/prod/api/token", doc

    with subtest("the unit"):
        start = machine.succeed("systemctl show -p ExecStart --value nixecs-secrets.service")
        assert "secrets fetch --list /etc/nixecs/secrets.json" in start, start
        after = machine.succeed("systemctl show -p After --value nixecs-secrets.service").split()
        assert "nixecs-userdata.service" in after and "network-online.target" in after, after
        before = machine.succeed("systemctl show -p Before --value nixecs-secrets.service").split()
        assert "ecs-agent.service" in before, before
        agent_after = machine.succeed("systemctl show -p After --value ecs-agent.service").split()
        assert "nixecs-secrets.service" in agent_after, agent_after
        assert machine.succeed("systemctl show -p Type --value nixecs-secrets.service").strip() == "oneshot"
        # A oneshot has no start timeout by default; the tool's own deadline is 120 s.
        timeout = machine.succeed("systemctl show -p TimeoutStartUSec --value nixecs-secrets.service").strip()
        assert timeout == "3min", timeout
        mode = machine.succeed("stat -c '%U %a' /run/nixecs/secrets").strip()
        assert mode == "root 751", mode
  '';
}
