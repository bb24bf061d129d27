# On-host draining for Auto Scaling groups with a termination lifecycle hook:
# `nixecs drain` waits for the instance's lifecycle state
# Terminating:Wait, sets the container instance to DRAINING, waits for its
# tasks to stop (at most the timeout) and completes the lifecycle action.
{
  config,
  lib,
  utils,
  ...
}:
let
  cfg = config.nixecs.drain;
  # "<n>s|m|h" in seconds (the type guarantees the shape).
  timeoutSeconds =
    let
      parts = builtins.match "([0-9]+)(s|m|h)" cfg.timeout;
      unit = {
        s = 1;
        m = 60;
        h = 3600;
      };
    in
    lib.toIntBase10 (builtins.elemAt parts 0) * unit.${builtins.elemAt parts 1};
in
{
  imports = [ ./common.nix ];

  options.nixecs.drain = {
    enable = lib.mkOption {
      type = lib.types.bool;
      default = config.nixecs.userdata.enable or false;
      defaultText = lib.literalExpression "config.nixecs.userdata.enable";
      description = ''
        Whether to run `nixecs-drain.service`, which drains this ECS container
        instance when its Auto Scaling group terminates it and then completes
        the termination lifecycle action. On by default wherever userdata is
        applied: the unit then drains only groups whose settings userdata has
        `drain:` (the groups the fleet gives a termination lifecycle hook) and
        exits at once elsewhere.
      '';
    };

    timeout = lib.mkOption {
      type = lib.types.nullOr (lib.types.strMatching "^[0-9]+(s|m|h)$");
      default = null;
      example = "30m";
      description = ''
        How long to wait for the instance's tasks to stop before completing
        the lifecycle action anyway (then ECS's managed-draining hook's too, so
        this bounds the termination), as `<n>s`, `<n>m` or `<n>h`, at most
        115m (the lifecycle hook's heartbeat allows two hours). `null` takes
        the timeout from the runtime settings (`drain.timeout` in
        `/run/nixecs/settings.json`); without one there, the unit has nothing
        to do.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = config.nixecs.ecs.enable or false;
        message = "nixecs.drain.enable drains the ECS agent's container instance: also set nixecs.ecs.enable = true (or nixecs.drain.enable = false).";
      }
      {
        assertion = cfg.timeout == null || timeoutSeconds <= 6900;
        message = "nixecs.drain.timeout = \"${toString cfg.timeout}\" is longer than the termination lifecycle hook's two hours allow: use at most \"115m\".";
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
        # utils.escapeSystemdExecArgs: see userdata.nix.
        ExecStart = utils.escapeSystemdExecArgs (
          [
            (lib.getExe config.nixecs.package)
            "drain"
            "--imds"
            (config.nixecs.userdata.imdsEndpoint or "http://169.254.169.254")
          ]
          ++ lib.optionals (cfg.timeout != null) [
            "--timeout"
            cfg.timeout
          ]
        );
        Restart = "on-failure";
        RestartSec = "10s";
        # No TimeoutStartSec: with Type=simple the start is over once the process runs
        # (systemd.service(5), Type=simple), and `nixecs drain` watches the lifecycle state
        # for the instance's whole life. It bounds the drain itself (its timeout + 120 s).
        # Stopping must not cut a drain short: allow that deadline plus a margin; with the
        # timeout from the runtime settings, the largest one allowed (115m) plus 5 min.
        TimeoutStopSec = if cfg.timeout == null then "2h" else "${cfg.timeout} 5min";
      };
    };
  };
}
