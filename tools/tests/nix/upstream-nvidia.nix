# Stand-ins for the nixpkgs modules nixecs.ecs.gpu.enable configures, for the tests
# that evaluate it under nixeval (whose upstream.nix declares none of them; the module
# leaves its GPU configuration out, with a warning, where they are not declared).
# Declarations copied with their types and defaults (not descriptions), config
# definitions only where they meet ours, as nixeval's README asks. Read in the nixpkgs
# fork Swarsel/nixpkgs at 4aa6836a (a 2026 nixpkgs with the nixfmt-era modules; the
# pinned 25.11 files could not be read here):
# - nixos/modules/hardware/video/nvidia.nix (hardware.nvidia.*)
# - nixos/modules/services/hardware/nvidia-container-toolkit/default.nix
#   (hardware.nvidia-container-toolkit.*)
# - nixos/modules/services/x11/xserver.nix (services.xserver.videoDrivers)
# - nixos/modules/hardware/graphics.nix (hardware.graphics.enable)
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.hardware.nvidia;
  tk = config.hardware.nvidia-container-toolkit;
  # Fake packages of nixeval's pkgs: the driver reports a version >= 560 (so `open`
  # defaults to null and must be set, as upstream asserts).
  driver = pkgs.nvidia-x11.overrideAttrs { version = "580.95.05"; };
in
{
  options = {
    services.xserver.videoDrivers = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [
        "modesetting"
        "fbdev"
      ];
    };
    hardware.graphics.enable = lib.mkOption {
      type = lib.types.bool;
      default = false;
    };
    hardware.nvidia = {
      package = lib.mkOption {
        type = lib.types.package;
        default = driver;
      };
      datacenter.enable = lib.mkEnableOption "";
      enabled = lib.mkOption {
        type = lib.types.bool;
        readOnly = true;
        default = lib.elem "nvidia" config.services.xserver.videoDrivers || cfg.datacenter.enable;
      };
      nvidiaPersistenced = lib.mkEnableOption "";
      nvidiaSettings = lib.mkEnableOption "" // {
        default = true;
      };
      open = lib.mkOption {
        type = lib.types.nullOr lib.types.bool;
        default = if lib.versionOlder cfg.package.version "560" then false else null;
      };
    };
    hardware.nvidia-container-toolkit = {
      enable = lib.mkOption {
        type = lib.types.bool;
        default = false;
      };
      package = lib.mkOption {
        type = lib.types.package;
        default = pkgs.nvidia-container-toolkit;
      };
      device-name-strategy = lib.mkOption {
        type = lib.types.enum [
          "index"
          "uuid"
          "type-index"
        ];
        default = "index";
      };
      suppressNvidiaDriverAssertion = lib.mkOption {
        type = lib.types.bool;
        default = false;
      };
    };
  };

  config = lib.mkMerge [
    (lib.mkIf cfg.enabled {
      # nvidia.nix: drivers >= 560 leave `open` null and refuse that.
      assertions = [
        {
          assertion = cfg.open != null;
          message = "You must configure `hardware.nvidia.open` on NVIDIA driver versions >= 560.";
        }
      ];
      systemd.services.nvidia-persistenced = lib.mkIf cfg.nvidiaPersistenced {
        wantedBy = [ "multi-user.target" ];
        serviceConfig.ExecStart = "${lib.getExe' cfg.package "nvidia-persistenced"} --verbose";
        serviceConfig.Type = "forking";
      };
    })
    (lib.mkIf tk.enable {
      assertions = [
        {
          assertion =
            cfg.datacenter.enable
            || lib.elem "nvidia" config.services.xserver.videoDrivers
            || tk.suppressNvidiaDriverAssertion;
          message = "`nvidia-container-toolkit` requires nvidia drivers: set `hardware.nvidia.datacenter.enable`, add \"nvidia\" to `services.xserver.videoDrivers`, or set `hardware.nvidia-container-toolkit.suppressNvidiaDriverAssertion`";
        }
      ];
      hardware.graphics.enable = lib.mkIf (!cfg.datacenter.enable) true;
      systemd.services.nvidia-container-toolkit-cdi-generator = {
        description = "Container Device Interface (CDI) for Nvidia generator";
        requiredBy = lib.mkIf config.virtualisation.docker.enable [ "docker.service" ];
        wantedBy = [ "multi-user.target" ];
        serviceConfig = {
          ExecStart = "${lib.getExe' tk.package "nvidia-ctk"} cdi generate --device-name-strategy ${tk.device-name-strategy} --output /run/cdi/nvidia-container-toolkit.json";
          ExecStartPre = "-${lib.getExe' pkgs.systemd "udevadm"} settle --timeout=180";
          RemainAfterExit = true;
          RuntimeDirectory = "cdi";
          Type = "oneshot";
        };
      };
      # Docker >= 25 (the stand-in's docker is newer): CDI on.
      virtualisation.docker.daemon.settings.features.cdi = true;
    })
  ];
}
