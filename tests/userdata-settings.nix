# Settings userdata (`#nixecs-settings v1`) from a fake IMDSv2: nixecs apply
# writes the agent's runtime environment and settings.json before the agent
# starts, a second apply and a reboot change nothing, and invalid userdata
# fails with exit 2 leaving the previous state intact.
{ lib, ... }:
let
  settings = {
    version = 1;
    cluster = "blue";
    group = "web";
    flake = "github:acme/infra";
    ecs = {
      attributes.tier = "web";
      tags.team = "payments";
      spot_draining = true;
      reserved_memory_mib = 128;
      log_level = "debug";
      image_pull_behavior = "prefer-cached";
      task_cleanup_wait = "1h";
      container_stop_timeout = "45s";
      privileged = false;
    };
    secrets = { };
    drain = null;
  };
in
{
  name = "nixecs-userdata-settings";

  nodes.machine =
    { ... }:
    {
      imports = [ ./lib/node.nix ];

      testing.fakeImds.settings = settings;

      virtualisation.memorySize = 1536;
    };

  testScript = ''
    import json

    def runtime_state():
        return machine.succeed("sha256sum /run/nixecs/ecs.env /run/nixecs/settings.json")

    def agent_env():
        # The unit's own EnvironmentFile= lines, in order.
        files = machine.succeed("systemctl show -p EnvironmentFiles --value ecs-agent.service")
        props = " ".join(
            "-p EnvironmentFile=" + ("-" if "ignore_errors=yes" in l else "") + l.split()[0]
            for l in files.splitlines() if l.strip()
        )
        out = machine.succeed(f"systemd-run --quiet --wait --pipe {props} env")
        return dict(l.split("=", 1) for l in out.splitlines() if "=" in l)

    machine.wait_for_unit("nixecs-userdata.service")

    with subtest("the runtime environment file"):
        env_file = machine.succeed("cat /run/nixecs/ecs.env")
        print(env_file)
        lines = env_file.splitlines()
        for line in [
            "ECS_CLUSTER=blue",
            "ECS_ENABLE_SPOT_INSTANCE_DRAINING=true",
            "ECS_RESERVED_MEMORY=128",
            "ECS_LOGLEVEL=debug",
            "ECS_IMAGE_PULL_BEHAVIOR=prefer-cached",
            "ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION=1h",
            "ECS_CONTAINER_STOP_TIMEOUT=45s",
            "ECS_DISABLE_PRIVILEGED=true",
        ]:
            assert line in lines, f"{line!r} missing from /run/nixecs/ecs.env"

    with subtest("the agent sees the runtime values over the baked ones"):
        env = agent_env()
        assert env["ECS_CLUSTER"] == "blue", env["ECS_CLUSTER"]
        assert json.loads(env["ECS_INSTANCE_ATTRIBUTES"]) == {"tier": "web"}, env["ECS_INSTANCE_ATTRIBUTES"]
        assert json.loads(env["ECS_CONTAINER_INSTANCE_TAGS"]) == {"team": "payments"}
        assert env["ECS_DATADIR"] == "/var/lib/ecs/data", "baked host settings must survive"

    with subtest("settings.json"):
        doc = json.loads(machine.succeed("cat /run/nixecs/settings.json"))
        assert doc["version"] == 1 and doc["cluster"] == "blue" and doc["group"] == "web", doc
        assert doc["ecs"]["reserved_memory_mib"] == 128, doc
        assert doc["drain"] is None, doc

    with subtest("without drain: in the settings, the drain unit has nothing to do"):
        machine.wait_until_succeeds("systemctl show -p ActiveState --value nixecs-drain.service | grep -qx inactive")
        assert machine.succeed("systemctl show -p Result --value nixecs-drain.service").strip() == "success"
        assert "--timeout" not in machine.succeed("systemctl show -p ExecStart --value nixecs-drain.service")
        machine.succeed("journalctl -u nixecs-drain.service | grep -q 'nothing to do'")

    with subtest("settings userdata never rebuilds"):
        machine.fail("test -e /etc/nixos/configuration.nix")

    with subtest("a second apply changes nothing"):
        before = runtime_state()
        machine.succeed("systemctl restart nixecs-userdata.service")
        assert runtime_state() == before

    with subtest("a second boot changes nothing"):
        machine.shutdown()
        machine.start()
        machine.wait_for_unit("nixecs-userdata.service")
        assert runtime_state() == before
        machine.fail("test -e /etc/nixos/configuration.nix")

    with subtest("invalid userdata: exit 2, previous state kept"):
        machine.succeed("printf '#nixecs-settings v1\\n{\"version\": 1, \"cluster\": \"bad name!\"}\\n' > /run/fake-imds/user-data")
        machine.succeed("systemctl restart fake-imds.service")
        machine.fail("systemctl restart nixecs-userdata.service")
        status = machine.succeed("systemctl show -p ExecMainStatus --value nixecs-userdata.service").strip()
        assert status == "2", f"invalid userdata must exit 2, got {status}"
        assert runtime_state() == before
        machine.succeed("journalctl -u nixecs-userdata.service | grep -i cluster")
  '';
}
