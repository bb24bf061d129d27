# NVIDIA GPUs for ECS tasks on the native agent: what the ECS-optimized GPU AMI
# and its ecs-init provide, declared with nixpkgs' own modules.
#
# What the ECS agent does with GPUs (aws/amazon-ecs-agent v1.105.0, commit
# 08583c3f, read in a git mirror):
# - agent/gpu/nvidia_gpu_manager_unix.go Initialize: with ECS_ENABLE_GPU_SUPPORT
#   it reads /var/lib/ecs/gpu/nvidia-gpu-info.json ({"DriverVersion": ...,
#   "GPUIDs": [...]}, the json tags of NvidiaGPUManager) once at start and
#   registers those GPU ids; without the file it registers none. ecs-init
#   writes the file on the AMI (ecs-init/gpu/nvidia_gpu_manager.go Setup, from
#   ecs-init/engine/engine.go PreStart, fatal on error); here
#   `nixecs gpu-info` (tools/src/nixecs/host/gpu.py) does, as the agent
#   unit's first ExecStartPre.
# - agent/api/task/task.go populateGPUEnvironmentVariables and
#   overrideContainerRuntime: a container given GPUs gets
#   NVIDIA_VISIBLE_DEVICES=<the GPU ids, comma-separated> and Docker's runtime
#   named by ECS_NVIDIA_RUNTIME (agent/config/config.go DefaultNvidiaRuntime
#   "nvidia"). So dockerd must have a runtime of exactly that name that turns
#   NVIDIA_VISIBLE_DEVICES=GPU-<uuid> into the devices.
#
# How nixpkgs provides that (nixos/modules/services/hardware/
# nvidia-container-toolkit/default.nix and nixos/modules/virtualisation/
# docker.nix; the pinned 25.11 files could not be read here: NixOS/nixpkgs is
# too large to mirror and the index's NixOS/nixpkgs copies are older; read in
# the nixpkgs fork Swarsel/nixpkgs at 4aa6836a, a 2026 nixpkgs with the
# nixfmt-era modules; the 2024 NixOS/nixpkgs a808f823 has the same toolkit core):
# - hardware.nvidia-container-toolkit.enable generates a CDI specification
#   at boot (nvidia-container-toolkit-cdi-generator.service, `nvidia-ctk cdi
#   generate` into /run/cdi) and turns on Docker's CDI (`features.cdi`).
#   CDI alone is `docker run --device nvidia.com/gpu=...`, which the ECS agent
#   never asks for.
# - virtualisation.docker.enableNvidia is deprecated (a warning with Docker
#   >= 25, and an assertion that wants 32-bit graphics libraries on x86_64);
#   what it adds is a `runtimes.nvidia` entry running the toolkit's
#   nvidia-container-runtime (its "tools" output) with
#   /etc/nvidia-container-runtime/config.toml in `mode = "cdi"`, and it makes
#   that runtime Docker's default. That runtime is what the agent uses, so this
#   module declares the same entry and configuration itself, without making it
#   the default (only GPU containers run through it, as on the AMI).
# - In CDI mode nvidia-container-runtime reads NVIDIA_VISIBLE_DEVICES (when
#   accept-nvidia-visible-devices-envvar-when-unprivileged, as ECS task
#   containers are unprivileged) and qualifies each id with the default kind,
#   nvidia.com/gpu=<id> (NVIDIA/nvidia-container-toolkit
#   internal/modifier/cdi.go getDevicesFromSpec, read at 0134ba42; no id, no
#   change: containers without GPUs run as with runc). The
#   specification must therefore name devices by UUID:
#   device-name-strategy = "uuid" (nixpkgs' option; its default "index" names
#   them 0, 1, ...), matching the UUIDs `nixecs gpu-info` records.
# - The driver: nixos/modules/hardware/video/nvidia.nix. `hardware.nvidia.enabled`
#   (read-only) is true when "nvidia" is in services.xserver.videoDrivers or
#   hardware.nvidia.datacenter.enable is set, and the toolkit asserts one of
#   them. videoDrivers selects the driver without starting X (services.xserver.enable
#   stays off); datacenter.enable would also run NVIDIA's fabric manager, which
#   only NVSwitch systems (p4d, p5) need. Drivers >= 560 leave
#   hardware.nvidia.open null and assert that it is set: open kernel modules
#   suit Turing and later (g4dn T4, g5 A10G, g6 L4, p4d/p5), not Volta or
#   older (p3, g3), hence a default the host may override.
{
  config,
  lib,
  options,
  utils,
  ...
}:
let
  cfg = config.nixecs.ecs.gpu;
  # Every NixOS evaluation (nixos/lib/eval-config.nix, lib.nixosSystem) declares
  # these: nvidia.nix and the toolkit's module are in nixos/modules/module-list.nix,
  # services.xserver in xserver.nix. A module set of stand-ins that lacks them
  # (an evaluator of nixecs' modules that declares only the upstream options the
  # other modules touch) would fail on the first definition below, even with
  # the option off (a definition of an undeclared option is an error under
  # mkIf false too); there the GPU configuration is left out, with a warning.
  # `options` holds declarations only, so reading it here cannot recurse.
  haveNvidia =
    options ? hardware.nvidia.package
    && options ? hardware.nvidia-container-toolkit.enable
    && options ? services.xserver.videoDrivers;
  toolkit = config.hardware.nvidia-container-toolkit.package;
  # ECS_NVIDIA_RUNTIME and Docker's runtime of that name: one value, so they
  # cannot differ.
  runtime = "nvidia";
in
{
  imports = [ ./ecs-host.nix ];

  options.nixecs.ecs.gpu = {
    enable = lib.mkEnableOption ''
      NVIDIA GPUs for ECS tasks: the NVIDIA driver, nvidia-container-toolkit as
      Docker's `nvidia` runtime, the GPU information file the ECS agent reads
      ({file}`/var/lib/ecs/gpu/nvidia-gpu-info.json`, written before the agent
      starts) and `ECS_ENABLE_GPU_SUPPORT`. The driver is unfree: allow it in
      the host's `nixpkgs.config`. Fleet groups on such hosts say `gpu: true`'';
  };

  config = lib.mkIf (config.nixecs.ecs.enable && cfg.enable) (
    if !haveNvidia then
      {
        warnings = [
          "nixecs.ecs.gpu.enable: this evaluation lacks nixpkgs' NVIDIA modules (hardware.nvidia, hardware.nvidia-container-toolkit, services.xserver.videoDrivers), so the host gets no GPU configuration; build it with nixpkgs' lib.nixosSystem, which declares them."
        ];
      }
    else
      {
        # nixpkgs' docker.nix (nixos/modules/virtualisation/docker.nix) with
        # enableNvidia writes its own environment.etc."nvidia-container-runtime/
        # config.toml".text; `text` is `lines`, so the two would be concatenated
        # into one file with every table twice, which is not TOML. `or false`: the
        # option is deprecated and may be gone from a later nixpkgs.
        assertions = [
          {
            assertion = !(config.virtualisation.docker.enableNvidia or false);
            message = "nixecs.ecs.gpu.enable provides Docker's nvidia runtime and its /etc/nvidia-container-runtime/config.toml itself; virtualisation.docker.enableNvidia writes that file too (the two would make one invalid file): set virtualisation.docker.enableNvidia = false.";
          }
        ];

        # The driver, headless.
        services.xserver.videoDrivers = [ "nvidia" ];
        hardware.nvidia = {
          open = lib.mkDefault true;
          # Keeps the driver loaded and the GPUs initialised with no client, as
          # the ECS GPU AMI runs nvidia-persistenced.
          nvidiaPersistenced = lib.mkDefault true;
          # The X configuration GUI: nothing to configure on a server.
          nvidiaSettings = lib.mkDefault false;
        };

        hardware.nvidia-container-toolkit = {
          enable = true;
          device-name-strategy = "uuid";
        };

        environment.etc."nvidia-container-runtime/config.toml".text = ''
          accept-nvidia-visible-devices-envvar-when-unprivileged = true

          [nvidia-container-runtime]
          mode = "cdi"
          runtimes = ["docker-runc", "runc", "crun"]

          [nvidia-container-runtime.modes.cdi]
          default-kind = "nvidia.com/gpu"
          spec-dirs = ["/etc/cdi", "/var/run/cdi"]

          [nvidia-ctk]
          path = "${lib.getExe' toolkit "nvidia-ctk"}"
        '';

        virtualisation.docker = {
          daemon.settings.runtimes.${runtime}.path =
            "${lib.getOutput "tools" toolkit}/bin/nvidia-container-runtime";
          extraPackages = [ (lib.getOutput "tools" toolkit) ];
        };

        nixecs.ecs.featureEnvironment = {
          ECS_ENABLE_GPU_SUPPORT = "true";
          ECS_NVIDIA_RUNTIME = runtime;
        };

        # ecs-init's gpu Setup, where ecs-init runs it: on the AMI the agent's unit
        # runs `amazon-ecs-init pre-start` as its ExecStartPre, with
        # Restart=on-failure (aws/amazon-ecs-agent v1.105.0
        # packaging/generic-rpm-integrated/ecs.service), and PreStart sets up the
        # GPUs first (ecs-init/engine/engine.go PreStart → PreStartGPU, a failure
        # fails the start). So the file is rewritten on every start of the agent,
        # which reads it once when it starts, and a failure (nvidia-smi before
        # the driver is ready, a driver updated under a running one) is retried
        # with the agent's Restart=. A unit of its own that the agent required
        # would leave the agent dependency-failed for good after one failure at
        # boot, and restart it with every switch that touches that unit.
        nixecs.ecs.featureExecStartPre = [
          # udev creates /dev/nvidia* when the driver loads (nvidia.nix's rules);
          # gpu-info writes nothing without them. "-": a settle that times out
          # leaves gpu-info to decide.
          "-${
            utils.escapeSystemdExecArgs [
              (lib.getExe' config.systemd.package "udevadm")
              "settle"
              "--timeout=60"
            ]
          }"
          (utils.escapeSystemdExecArgs [
            (lib.getExe config.nixecs.package)
            "gpu-info"
            "--nvidia-smi"
            (lib.getExe' config.hardware.nvidia.package "nvidia-smi")
          ])
        ];

        systemd.services.ecs-agent = {
          # Ordering only (nothing required, see above): the device nodes and the
          # CDI specification before the file; nvidia-smi answers faster with the
          # persistence daemon up.
          after = [
            "systemd-udev-settle.service"
            "systemd-modules-load.service"
            "nvidia-container-toolkit-cdi-generator.service"
            "nvidia-persistenced.service"
          ];
          # The settle (at most 60s) and nvidia-smi (at most 60s, host/gpu.py)
          # before the agent itself: more than systemd's default 90s.
          serviceConfig.TimeoutStartSec = "180s";
        };
      }
  );
}
