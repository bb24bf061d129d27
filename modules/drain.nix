# On-host draining for Auto Scaling groups with a termination lifecycle hook:
# `nixecs drain` waits for the instance's lifecycle state
# Terminating:Wait, sets the container instance to DRAINING, waits for its
# tasks to stop (at most the timeout) and completes the lifecycle action.
{
  config,
  lib,
  ...
}:
let
  cfg = config.nixecs.drain;
in
{
  imports = [ ./common.nix ];

  options.nixecs.drain = {
    enable = lib.mkEnableOption ''
      `nixecs-drain.service`, which drains this ECS container instance when
      its Auto Scaling group terminates it and then completes the
      termination lifecycle action. Only useful for groups with a
      termination lifecycle hook (`drain:` in the fleet file)'';

    timeout = lib.mkOption {
      type = lib.types.strMatching "^[0-9]+(s|m|h)$";
      default = "15m";
      example = "30m";
      description = ''
        How long to wait for the instance's tasks to stop before completing
        the lifecycle action anyway, as `<n>s`, `<n>m` or `<n>h`. Keep it
        below the lifecycle hook's heartbeat timeout.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = config.nixecs.ecs.enable or false;
        message = "nixecs.drain.enable drains the ECS agent's container instance: also set nixecs.ecs.enable = true.";
      }
    ];

    systemd.services.nixecs-drain = {
      description = "Drain this ECS container instance on Auto Scaling termination";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [
        "network-online.target"
        "ecs-agent.service"
        "nixecs-userdata.service"
        "nixecs-secrets.service"
      ];
      serviceConfig = {
        Type = "simple";
        ExecStart = "${lib.getExe config.nixecs.package} drain --timeout ${cfg.timeout} --imds ${
          config.nixecs.userdata.imdsEndpoint or "http://169.254.169.254"
        }";
        Restart = "on-failure";
        RestartSec = "10s";
        # Stopping must not cut a drain short: allow the whole timeout.
        TimeoutStopSec = "${cfg.timeout} 1min";
      };
    };
  };
}
