# GPU hosts (issue 22, item 4): with nixecs.ecs.gpu.enable the ECS agent gets
# ECS_ENABLE_GPU_SUPPORT and Docker a runtime of the name it asks for
# (ECS_NVIDIA_RUNTIME), and nixecs-gpu-info runs before the agent
# (modules/ecs-gpu.nix cites the agent's source). What needs no GPU is
# checked here: the VM has none, so the GPU file is not written (as ecs-init,
# which writes nothing without /dev/nvidia*), the agent still starts after
# the unit, and nvidia-container-runtime runs a container that asks for no
# GPU (its configuration parses, it hands over to runc). Whether a GPU
# reaches a task is for a GPU instance (docs/host.md).
#
# The NVIDIA driver is unfree: the nodes get a package set that allows exactly
# the driver's packages (runNixOSTest sets node.pkgs to its own pkgsLinux,
# nixpkgs pkgs/build-support/testers/default.nix; a node may not set
# nixpkgs.config under a read-only package set).
{ lib, hostPkgs, ... }:
let
  nvidiaUnfree = [
    "nvidia-x11"
    "nvidia-settings"
    "nvidia-persistenced"
  ];
in
{
  name = "ecs-gpu";

  node.pkgs = lib.mkForce (
    import hostPkgs.path {
      system = hostPkgs.stdenv.hostPlatform.system;
      config.allowUnfreePredicate = pkg: builtins.elem (lib.getName pkg) nvidiaUnfree;
    }
  );

  nodes = {
    gpu =
      { pkgs, lib, ... }:
      {
        imports = [ ../modules ];
        nixecs.ecs.enable = true;
        nixecs.ecs.gpu.enable = true;
        # nvidia-ctk needs NVML, i.e. a GPU, to write the CDI specification;
        # without one it fails, and Docker (which may require it) would not
        # start. The VM has no GPU: the generator is a no-op here.
        systemd.services.nvidia-container-toolkit-cdi-generator.serviceConfig.ExecStart =
          lib.mkForce "${pkgs.coreutils}/bin/true";
        virtualisation.memorySize = 1536;
        virtualisation.diskSize = 4096;
      };
    plain = ./lib/plain-ecs-node.nix;
  };

  testScript =
    let
      rootfs = import ./lib/busybox-rootfs.nix {
        pkgs = hostPkgs;
        name = "gpu-test-rootfs.tar";
        applets = [ "sh" ];
      };
    in
    ''
      import json

      start_all()
      gpu.wait_for_unit("docker.service")
      plain.wait_for_unit("docker.service")

      with subtest("no GPU in the VM: the file is not written, and the agent starts after the unit"):
          gpu.fail("ls /dev/nvidia*")
          gpu.wait_for_unit("nixecs-gpu-info.service")
          gpu.succeed("journalctl -u nixecs-gpu-info.service | grep -q 'no /dev/nvidia'")
          gpu.fail("test -e /var/lib/ecs/gpu/nvidia-gpu-info.json")
          after = gpu.succeed("systemctl show -p After --value ecs-agent.service")
          requires = gpu.succeed("systemctl show -p Requires --value ecs-agent.service")
          assert "nixecs-gpu-info.service" in after.split(), after
          assert "nixecs-gpu-info.service" in requires.split(), requires
          # The agent started (it then fails to reach ECS and restarts: no AWS here),
          # and only once the unit had finished.
          gpu.wait_until_succeeds(
              "test $(systemctl show -p ExecMainStartTimestampMonotonic --value ecs-agent.service) -gt 0"
          )
          info = int(gpu.succeed("systemctl show -p ActiveEnterTimestampMonotonic --value nixecs-gpu-info.service"))
          agent = int(gpu.succeed("systemctl show -p ExecMainStartTimestampMonotonic --value ecs-agent.service"))
          assert 0 < info <= agent, (info, agent)

      with subtest("the agent's variables: GPU support, and the runtime Docker has"):
          config = gpu.succeed("cat /etc/ecs/ecs.nixos.config")
          assert "ECS_ENABLE_GPU_SUPPORT=true" in config.splitlines(), config
          assert "ECS_NVIDIA_RUNTIME=nvidia" in config.splitlines(), config
          runtimes = json.loads(gpu.succeed("docker info --format '{{json .Runtimes}}'"))
          assert "nvidia" in runtimes, runtimes
          assert runtimes["nvidia"]["path"].endswith("/bin/nvidia-container-runtime"), runtimes
          daemon = json.loads(gpu.succeed(
              "cat $(systemctl cat docker.service | grep -o -- '--config-file=[^ ]*' | tail -1 | cut -d= -f2)"
          ))
          assert daemon["runtimes"]["nvidia"]["path"] == runtimes["nvidia"]["path"], daemon
          assert "default-runtime" not in daemon, daemon

      with subtest("nvidia-container-runtime runs a container that asks for no GPU"):
          gpu.succeed("docker import ${rootfs} gpu-test:latest")
          out = gpu.succeed("docker run --rm --runtime nvidia --network none gpu-test:latest /bin/sh -c 'echo ran'")
          assert out.strip() == "ran", out

      with subtest("a host without the option has none of it"):
          plain.fail("systemctl cat nixecs-gpu-info.service")
          plain.fail("systemctl cat nvidia-container-toolkit-cdi-generator.service")
          plain.fail("grep -q GPU /etc/ecs/ecs.nixos.config")
          runtimes = json.loads(plain.succeed("docker info --format '{{json .Runtimes}}'"))
          assert "nvidia" not in runtimes, runtimes
    '';
}
