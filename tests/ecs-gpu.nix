# GPU hosts (issue 22, item 4): with nixecs.ecs.gpu.enable the ECS agent gets
# ECS_ENABLE_GPU_SUPPORT and Docker a runtime of the name it asks for
# (ECS_NVIDIA_RUNTIME), and `nixecs gpu-info` runs as the agent's first
# ExecStartPre, as ecs-init's pre-start (modules/ecs-gpu.nix cites the
# agent's source). What needs no GPU is checked here: the VM has none, so the
# GPU file is not written (as ecs-init, which writes nothing without
# /dev/nvidia*) and a stale one is removed, the agent still starts,
# nvidia-container-runtime runs a container that asks for no GPU (its
# configuration parses, it hands over to runc), and a container given a GPU id
# the way the agent gives it (NVIDIA_VISIBLE_DEVICES, unprivileged) is
# refused naming the CDI device nvidia.com/gpu=<id>: CDI mode, the variable
# accepted, the default kind. Whether a GPU reaches a task is for a GPU
# instance (docs/host.md).
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
      rootfs = import ./lib/pkgs/busybox-rootfs.nix {
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

      with subtest("no GPU in the VM: gpu-info runs first in the agent's start, writes no file"):
          gpu.fail("ls /dev/nvidia*")
          pre = gpu.succeed("systemctl show -p ExecStartPre --value ecs-agent.service")
          # udevadm settle, then gpu-info, before the unit's own ExecStartPre lines.
          assert pre.index("/bin/udevadm") < pre.index("gpu-info") < pre.index("accept_ra"), pre
          requires = gpu.succeed("systemctl show -p Requires --value ecs-agent.service")
          assert "gpu" not in requires, requires
          # The agent started (it then fails to reach ECS and restarts: no AWS here);
          # each start ran gpu-info first.
          gpu.wait_until_succeeds(
              "test $(systemctl show -p ExecMainStartTimestampMonotonic --value ecs-agent.service) -gt 0"
          )
          gpu.wait_until_succeeds("journalctl -u ecs-agent.service | grep -q 'no /dev/nvidia'")
          gpu.fail("test -e /var/lib/ecs/gpu/nvidia-gpu-info.json")

      with subtest("a stale GPU file (the instance type had GPUs) is removed at the next start"):
          gpu.succeed(
              "mkdir -p /var/lib/ecs/gpu",
              "echo '{\"DriverVersion\":\"550.127.05\",\"GPUIDs\":[\"GPU-1\"]}' > /var/lib/ecs/gpu/nvidia-gpu-info.json",
              "systemctl restart ecs-agent.service",
          )
          gpu.wait_until_succeeds("journalctl -u ecs-agent.service | grep -q 'removed the stale'")
          gpu.fail("test -e /var/lib/ecs/gpu/nvidia-gpu-info.json")

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

      with subtest("a GPU id in NVIDIA_VISIBLE_DEVICES becomes the CDI device nvidia.com/gpu=<id>"):
          # As the agent starts a container given a GPU (unprivileged, the id in the
          # variable, task.go populateGPUEnvironmentVariables): the runtime in CDI mode
          # qualifies the id with the default kind and finds no such device here.
          uuid = "GPU-00000000-0000-0000-0000-000000000000"
          status, out = gpu.execute(
              f"docker run --rm --runtime nvidia --network none -e NVIDIA_VISIBLE_DEVICES={uuid}"
              " gpu-test:latest /bin/sh -c true 2>&1"
          )
          assert status != 0, out
          assert f"nvidia.com/gpu={uuid}" in out, out

      with subtest("a host without the option has none of it"):
          pre = plain.succeed("systemctl show -p ExecStartPre --value ecs-agent.service")
          assert "gpu-info" not in pre, pre
          plain.fail("systemctl cat nvidia-container-toolkit-cdi-generator.service")
          plain.fail("grep -q GPU /etc/ecs/ecs.nixos.config")
          runtimes = json.loads(plain.succeed("docker info --format '{{json .Runtimes}}'"))
          assert "nvidia" not in runtimes, runtimes
    '';
}
