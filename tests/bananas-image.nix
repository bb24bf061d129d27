# The example application's image (packages.<system>.bananas-image) on an ECS
# host: loaded into the host's Docker, run as ECS would run it (a port mapping,
# read-only root filesystem, no capabilities), and queried over HTTP. Also
# checks what the image promises: a non-root user, and no shell to exec into.
#
# The ECS agent is not started (it needs AWS); Docker, the nixecs host modules
# and their netfilter rules are the real ones.
{ pkgs, lib, ... }:
let
  ours = import ../pkgs { inherit pkgs; };
  image = ours.bananas-image;
  ref = "bananas:${ours.bananas.version}";
in
{
  name = "nixecs-bananas-image";

  nodes.machine =
    { ... }:
    {
      imports = [ ./lib/node.nix ];
      systemd.services.ecs-agent.wantedBy = lib.mkForce [ ];
      testing.fakeImds.userdata = ''
        #!/bin/sh
        true
      '';
      virtualisation.memorySize = 1536;
      virtualisation.diskSize = 2048;
    };

  # A function: testScript is `either str (functionTo str)` (nixos/lib/testing/testScript.nix,
  # nixpkgs 00f5ae06), and runNixOSTest runs both forms alike. The function form keeps the
  # team's nixeval harness, which forces string test scripts but has no stand-in for
  # dockerTools.buildLayeredImage, evaluating this test's node.
  testScript =
    { ... }:
    ''
      machine.wait_for_unit("docker.service")
      machine.succeed("docker load < ${image}")

      with subtest("the image runs as a non-root user, with no shell"):
          user = machine.succeed("docker image inspect --format '{{.Config.User}}' ${ref}").strip()
          assert user == "65534:65534", user
          machine.fail("docker run --rm --entrypoint /bin/sh ${ref} -c true")

      machine.succeed(
          "docker run -d --name bananas --read-only --cap-drop ALL"
          " --security-opt no-new-privileges -p 18080:8080 -e BANANAS_INITIAL=5 ${ref}"
      )
      machine.wait_for_open_port(18080)

      def http(method, path, body=None):
          data = f"--data '{body}' -H 'Content-Type: application/json'" if body else ""
          return machine.succeed(
              f"curl --silent --show-error --max-time 10 -X {method} {data}"
              f" -w ' %{{http_code}}' http://127.0.0.1:18080{path}"
          ).strip()

      with subtest("the service answers"):
          assert http("GET", "/health") == '{"status": "ok"} 200', http("GET", "/health")
          assert http("GET", "/bananas") == '{"bananas": 5} 200'
          assert http("POST", "/bananas", '{"count": 3}') == '{"bananas": 8} 201'
          assert http("DELETE", "/bananas", '{"count": 2}') == '{"bananas": 6} 200'
          assert http("POST", "/bananas", "not json").endswith(" 400")

      with subtest("it runs as uid 65534 and stops cleanly on SIGTERM, as ECS stops tasks"):
          pid = machine.succeed("docker inspect --format '{{.State.Pid}}' bananas").strip()
          machine.succeed(f"grep -E '^Uid:\\s+65534\\s' /proc/{pid}/status")
          machine.succeed("docker stop --time 10 bananas")
          code = machine.succeed("docker inspect --format '{{.State.ExitCode}}' bananas").strip()
          assert code == "0", code
    '';
}
