# A bridge-mode task with the NixOS firewall on (issue 8, items 2, 12, 13,
# 19): a container on Docker's default bridge fetches the task metadata
# endpoint and task credentials from 169.254.170.2 (DNAT to 127.0.0.1:51679),
# reaches the introspection port on the bridge, and cannot reach the instance
# metadata service; another machine cannot reach the introspection port.
#
# Stand-ins, since the VM has no AWS: the ECS agent is not started; a small
# HTTP server plays it on 127.0.0.1:51679 (task metadata v2 and credentials)
# and on port 51678 (introspection). The instance metadata service is a
# second node holding 169.254.169.254, routed like EC2's (off the instance),
# so containers reach it through the host's FORWARD path. The netfilter rules
# and the firewall are the real ones.
{ pkgs, lib, ... }:
let
  # The task image: a static busybox (sh, wget), imported with `docker import`.
  taskRootfs = import ./lib/pkgs/busybox-rootfs.nix {
    inherit pkgs;
    name = "ecs-bridge-task-rootfs.tar";
    applets = [
      "sh"
      "wget"
    ];
  };

  # Answers GET requests with fixed JSON per path prefix; argv: address port.
  fakeHttp =
    routes:
    pkgs.writeText "fake-http.py" ''
      import http.server, json, sys
      ROUTES = json.loads(${builtins.toJSON (builtins.toJSON routes)})
      class Handler(http.server.BaseHTTPRequestHandler):
          def do_GET(self):
              for prefix, body in ROUTES.items():
                  if self.path.startswith(prefix):
                      data = json.dumps(body).encode()
                      self.send_response(200)
                      self.send_header("Content-Type", "application/json")
                      self.send_header("Content-Length", str(len(data)))
                      self.end_headers()
                      self.wfile.write(data)
                      return
              self.send_error(404)
      http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
    '';

  agentRoutes = {
    "/v2/metadata" = {
      Cluster = "bridge-test";
      TaskARN = "arn:aws:ecs:us-east-1:123456789012:task/bridge-test/0123456789abcdef";
    };
    "/v2/credentials/" = {
      RoleArn = "arn:aws:iam::123456789012:role/task-role";
      AccessKeyId = "ASIATESTTASKROLE";
      SecretAccessKey = "test-only";
      Token = "test-only";
      Expiration = "2030-01-01T00:00:00Z";
    };
    "/v1/metadata" = {
      Cluster = "bridge-test";
      Version = "stand-in";
    };
  };
in
{
  name = "nixecs-ecs-bridge-task";

  nodes.machine =
    { ... }:
    {
      imports = [ ./lib/node.nix ];

      testing.fakeImds.userdata = ''
        #!/bin/sh
        true
      '';

      # The real agent needs AWS; the stand-in below listens where it would.
      systemd.services.ecs-agent.wantedBy = lib.mkForce [ ];
      systemd.services.fake-ecs-agent = {
        description = "Stand-in for the ECS agent's credentials/TMDS and introspection listeners";
        wantedBy = [ "multi-user.target" ];
        script = ''
          ${pkgs.python3}/bin/python3 ${fakeHttp agentRoutes} 127.0.0.1 51679 &
          exec ${pkgs.python3}/bin/python3 ${fakeHttp agentRoutes} 0.0.0.0 51678
        '';
      };

      # The NixOS default, stated: the test is about the firewall being on.
      networking.firewall.enable = true;

      virtualisation.memorySize = 1536;
      virtualisation.diskSize = 2048;
    };

  nodes.imds =
    { ... }:
    {
      networking.firewall.enable = false;
      systemd.services.fake-instance-metadata = {
        description = "Stand-in for the instance metadata service at 169.254.169.254";
        wantedBy = [ "multi-user.target" ];
        after = [ "network.target" ];
        preStart = "${pkgs.iproute2}/bin/ip addr replace 169.254.169.254/32 dev lo";
        script = ''
          exec ${pkgs.python3}/bin/python3 ${
            fakeHttp {
              "/latest" = {
                instance-role = "must-not-reach-containers";
              };
            }
          } 169.254.169.254 80
        '';
      };
    };

  testScript = ''
    start_all()
    machine.wait_for_unit("docker.service")
    machine.wait_for_unit("nixecs-ecs-netfilter.service")
    machine.wait_for_unit("fake-ecs-agent.service")
    machine.wait_for_open_port(51679, "127.0.0.1")
    imds.wait_for_unit("fake-instance-metadata.service")
    imds.wait_for_open_port(80, "169.254.169.254")

    # EC2's metadata service is off the instance: route it to the imds node.
    imds_ip = imds.succeed("ip -4 -o addr show dev eth1 | awk '{print $4}' | cut -d/ -f1").strip()
    machine_ip = machine.succeed("ip -4 -o addr show dev eth1 | awk '{print $4}' | cut -d/ -f1").strip()
    machine.succeed(f"ip route replace 169.254.169.254/32 via {imds_ip} dev eth1")
    # The host itself reaches it (and the listener works).
    machine.succeed("curl --silent --fail --max-time 5 http://169.254.169.254/latest/")

    machine.succeed("docker import ${taskRootfs} ecs-bridge-task:latest")

    def in_task(command):
        return f"docker run --rm --network bridge ecs-bridge-task:latest {command}"

    with subtest("the NixOS firewall is on"):
        machine.succeed("iptables -w -S INPUT | grep -q -- '-j nixos-fw'")

    with subtest("a bridge-mode task reaches the task metadata endpoint and its credentials"):
        meta = machine.succeed(in_task("wget -q -T 10 -O - http://169.254.170.2/v2/metadata"))
        assert "bridge-test" in meta, meta
        creds = machine.succeed(in_task("wget -q -T 10 -O - http://169.254.170.2/v2/credentials/0123-abcd"))
        assert "ASIATESTTASKROLE" in creds, creds

    with subtest("a task reaches the introspection API on the bridge, as ecs-init allows"):
        gateway = machine.succeed("ip -4 -o addr show dev docker0 | awk '{print $4}' | cut -d/ -f1").strip()
        machine.succeed(in_task(f"wget -q -T 10 -O - http://{gateway}:51678/v1/metadata"))

    with subtest("another machine does not reach the introspection API"):
        imds.succeed("curl --version")  # the refusal below is the network's, not a missing curl
        imds.fail(f"curl --silent --fail --max-time 5 http://{machine_ip}:51678/v1/metadata")

    with subtest("a task does not reach the instance metadata service"):
        machine.fail(in_task("wget -q -T 5 -O - http://169.254.169.254/latest/"))

    with subtest("without our rules the task would reach IMDS and lose the endpoint"):
        machine.succeed("systemctl stop nixecs-ecs-netfilter.service")
        machine.succeed(in_task("wget -q -T 10 -O - http://169.254.169.254/latest/"))
        machine.fail(in_task("wget -q -T 5 -O - http://169.254.170.2/v2/metadata"))
        machine.succeed("systemctl start nixecs-ecs-netfilter.service")
        machine.fail(in_task("wget -q -T 5 -O - http://169.254.169.254/latest/"))
        machine.succeed(in_task("wget -q -T 10 -O - http://169.254.170.2/v2/metadata"))

    with subtest("the block holds across a dockerd restart"):
        machine.succeed("systemctl restart docker.service")
        machine.fail(in_task("wget -q -T 5 -O - http://169.254.169.254/latest/"))
        machine.succeed(in_task("wget -q -T 10 -O - http://169.254.170.2/v2/metadata"))
  '';
}
