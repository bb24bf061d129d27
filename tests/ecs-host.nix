# An ECS container instance: the baked agent configuration, Docker, the
# ecs-init networking (route_localnet, NAT to the credentials endpoint,
# introspection port, IMDS block) and unit ordering. The agent cannot reach AWS
# here, so the test checks its unit and environment, not its registration.
{ lib, ... }:
{
  name = "nixecs-ecs-host";

  nodes.machine =
    { ... }:
    {
      imports = [ ./lib/node.nix ];

      # Build the option documentation of our modules too: an option without
      # a description fails the test.
      documentation.enable = true;
      documentation.nixos.enable = true;
      documentation.nixos.includeAllModules = true;

      nixecs.ecs = {
        enable = true;
        cluster = "baked";
        attributes.tier = "web tier";
        reservedMemoryMiB = 256;
      };
      nixecs.userdata.enable = true;
      # Script userdata, appending to /etc/ecs/ecs.config as AWS documents.
      testing.fakeImds.userdata = ''
        #!/bin/sh
        echo applied > /run/nixecs-script-ran
        echo ECS_LOGLEVEL=debug >> /etc/ecs/ecs.config
      '';

      virtualisation.memorySize = 1536;
    };

  testScript = ''
    machine.wait_for_unit("docker.service")
    machine.wait_for_unit("nixecs-ecs-netfilter.service")
    machine.wait_for_unit("nixecs-userdata.service")

    with subtest("baked agent configuration"):
        config = machine.succeed("cat /etc/ecs/ecs.nixos.config")
        print(config)
        for line in [
            "ECS_CLUSTER=baked",
            "ECS_RESERVED_MEMORY=256",
            "ECS_DISABLE_PRIVILEGED=true",
            "ECS_ENABLE_TASK_IAM_ROLE=true",
            "ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true",
            "ECS_DATADIR=/var/lib/ecs/data",
            "ECS_LOGLEVEL=info",
            "ECS_HOST_DATA_DIR=/var/lib/ecs",
            "ECS_AUDIT_LOGFILE=/var/log/ecs/audit.log",
            'ECS_AVAILABLE_LOGGING_DRIVERS=["json-file","syslog","awslogs","fluentd","none"]',
            "ECS_ENABLE_AWSLOGS_EXECUTIONROLE_OVERRIDE=true",
        ]:
            assert line in config.splitlines(), f"{line!r} missing from ecs.config"

    def agent_env():
        # What systemd hands the agent: the unit's own EnvironmentFile= lines.
        files = machine.succeed("systemctl show -p EnvironmentFiles --value ecs-agent.service")
        props = " ".join(
            "-p EnvironmentFile=" + ("-" if "ignore_errors=yes" in l else "") + l.split()[0]
            for l in files.splitlines() if l.strip()
        )
        out = machine.succeed(f"systemd-run --quiet --wait --pipe {props} env")
        return dict(l.split("=", 1) for l in out.splitlines() if "=" in l)

    with subtest("systemd parses the quoted JSON values intact"):
        env = agent_env()
        assert env["ECS_INSTANCE_ATTRIBUTES"] == '{"tier":"web tier"}', env["ECS_INSTANCE_ATTRIBUTES"]
        assert env["ECS_CLUSTER"] == "baked"

    with subtest("/etc/ecs/ecs.config is appendable and appended lines win over baked ones"):
        machine.succeed("test -f /etc/ecs/ecs.config && ! test -L /etc/ecs/ecs.config")
        assert machine.succeed("stat -c %a /etc/ecs/ecs.config").strip() == "644"
        assert agent_env()["ECS_LOGLEVEL"] == "debug", "the line script userdata appended is not seen"
        # A re-activation (switch, or the next boot) keeps the appended line.
        machine.succeed("/run/current-system/activate")
        machine.succeed("grep -qx ECS_LOGLEVEL=debug /etc/ecs/ecs.config")
        assert agent_env()["ECS_LOGLEVEL"] == "debug"

    with subtest("the runtime file overrides the baked one"):
        machine.succeed("printf 'ECS_CLUSTER=runtime\\nECS_LOGLEVEL=warn\\n' > /run/nixecs/ecs.env")
        env = agent_env()
        assert env["ECS_CLUSTER"] == "runtime" and env["ECS_LOGLEVEL"] == "warn", env
        machine.succeed("rm /run/nixecs/ecs.env")

    with subtest("the agent unit"):
        after = machine.succeed("systemctl show -p After --value ecs-agent.service").split()
        for unit in ["docker.service", "nixecs-userdata.service", "nixecs-ecs-netfilter.service", "network-online.target"]:
            assert unit in after, f"ecs-agent.service is not ordered after {unit}: {after}"
        requires = machine.succeed("systemctl show -p Requires --value ecs-agent.service").split()
        assert "docker.service" in requires, requires
        # Wants=, not Requires=: a failed re-apply must not stop the agent (vm-userdata-nix).
        assert "nixecs-userdata.service" not in requires, requires
        wants = machine.succeed("systemctl show -p Wants --value ecs-agent.service").split()
        assert "nixecs-userdata.service" in wants, wants
        files = machine.succeed("systemctl show -p EnvironmentFiles --value ecs-agent.service")
        order = [l.split()[0] for l in files.splitlines() if l.strip()]
        assert order == ["/etc/ecs/ecs.nixos.config", "/etc/ecs/ecs.config", "/run/nixecs/ecs.env"], order
        machine.succeed("test -d /var/lib/ecs/data")
        # ecs-init's PreStart: no router advertisements on Docker's bridge. ExecStartPre runs
        # on every start attempt, whether or not the agent then reaches AWS.
        machine.wait_until_succeeds(
            "test \"$(sysctl -n net.ipv6.conf.docker0.accept_ra)\" = 0", timeout=120
        )
        # The agent the host runs is the release the variable tables were read from: the
        # binary the unit's start script runs reports it (agent/version, `agent -version`).
        start = machine.succeed("systemctl show -P ExecStart ecs-agent.service")
        script = start.split("path=", 1)[1].split()[0]
        agent = machine.succeed(f"grep -o '/nix/store/[^ ]*/bin/agent' {script}").split()[0]
        version = machine.succeed(f"{agent} -version")
        assert "1.105.0" in version, version

    # amazon-init: this node does not import amazon-image.nix (the EC2 image module), so
    # a check here could not fail; whether nixecs-userdata replaces amazon-init is checked
    # where that module is imported: tools/tests/test_nixos_units.py
    # (test_amazon_init_is_disabled_where_amazon_image_is_imported).

    with subtest("script userdata ran once"):
        machine.succeed("grep -qx applied /run/nixecs-script-ran")

    def has_rule(listing, *parts):
        return any(all(p in line.split() for p in parts) for line in listing.splitlines())

    with subtest("host networking for task IAM roles (ecs-init)"):
        assert machine.succeed("sysctl -n net.ipv4.conf.all.route_localnet").strip() == "1"
        nat = machine.succeed("iptables -w -t nat -S")
        print(nat)
        assert has_rule(nat, "PREROUTING", "169.254.170.2/32", "80", "DNAT", "127.0.0.1:51679"), "DNAT to the credentials endpoint missing"
        assert has_rule(nat, "OUTPUT", "169.254.170.2/32", "80", "REDIRECT", "51679"), "local REDIRECT to the credentials endpoint missing"
        filt = machine.succeed("iptables -w -S INPUT")
        print(filt)
        # Current ecs-init: 51678 dropped on everything but lo, accepted on
        # docker0, for IPv4 and IPv6 (behaviour: tools/tests/test_netns.py).
        for listing in [filt, machine.succeed("ip6tables -w -S INPUT")]:
            assert has_rule(listing, "INPUT", "!", "lo", "51678", "DROP"), "off-host introspection is not blocked"
            assert has_rule(listing, "INPUT", "docker0", "51678", "ACCEPT"), "introspection from docker0 is not accepted"
        assert has_rule(filt, "INPUT", "docker0", "127.0.0.1/32", "51679", "DNAT", "ACCEPT"), "DNAT'd task requests are not accepted"
        assert has_rule(machine.succeed("iptables -w -S DOCKER-USER"), "DOCKER-USER", "169.254.169.254/32", "DROP"), "containers reach IMDS"
        assert has_rule(filt, "INPUT", "127.0.0.0/8", "RELATED,ESTABLISHED,DNAT", "DROP"), "localhost traffic filter missing"

    with subtest("the rules are idempotent and removed on stop"):
        machine.succeed("systemctl restart nixecs-ecs-netfilter.service")
        assert machine.succeed("iptables -w -t nat -S PREROUTING | grep -c 169.254.170.2").strip() == "1"
        machine.succeed("systemctl stop nixecs-ecs-netfilter.service")
        machine.fail("iptables -w -t nat -S | grep -q 169.254.170.2")
        machine.succeed("systemctl start nixecs-ecs-netfilter.service")
        machine.succeed("iptables -w -t nat -S | grep -q 169.254.170.2")

    with subtest("docker for ECS"):
        daemon = machine.succeed("docker info --format '{{.LoggingDriver}} {{.LiveRestoreEnabled}}'").split()
        assert daemon == ["json-file", "true"], daemon
  '';
}
