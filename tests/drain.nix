# On-host draining: the unit exists, runs for the life of the instance after
# the agent, and passes the configured timeout and IMDS endpoint.
{ ... }:
{
  name = "nixecs-drain";

  nodes.machine =
    { ... }:
    {
      imports = [ ./lib/node.nix ];

      testing.fakeImds.settings = {
        version = 1;
        cluster = "blue";
        group = "web";
        drain.timeout = "20m";
      };
      nixecs.drain = {
        enable = true;
        timeout = "20m";
      };
    };

  testScript = ''
    machine.wait_for_unit("nixecs-userdata.service")

    with subtest("the drain unit"):
        start = machine.succeed("systemctl show -p ExecStart --value nixecs-drain.service")
        assert "drain --imds http://127.0.0.1:8169 --timeout 20m" in start, start
        after = machine.succeed("systemctl show -p After --value nixecs-drain.service").split()
        assert "ecs-agent.service" in after and "nixecs-userdata.service" in after, after
        props = dict(
            l.split("=", 1)
            for l in machine.succeed("systemctl show -p Type -p Restart -p TimeoutStopUSec nixecs-drain.service").splitlines()
        )
        assert props["Type"] == "simple" and props["Restart"] == "on-failure", props
        assert props["TimeoutStopUSec"] == "21min", props
        machine.succeed("systemctl is-enabled nixecs-drain.service")
  '';
}
