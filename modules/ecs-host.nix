# An Amazon ECS container instance: Docker configured for ECS, the ECS agent
# ordered after Docker and after the boot-time userdata and secrets units, and
# the host networking that ecs-init sets up on the ECS-optimized AMI (task IAM
# role endpoint 169.254.170.2, introspection port protection).
{
  config,
  options,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.nixecs.ecs;

  duration = lib.types.strMatching "^[0-9]+(s|m|h)$";

  boolString = b: if b then "true" else "false";

  # systemd EnvironmentFile syntax: bare when the value is plain, otherwise
  # double-quoted with the four characters systemd unescapes (" \ ` $) escaped.
  # JSON values must be quoted, or systemd would strip their inner quotes.
  envLine =
    name: value:
    if builtins.match "[A-Za-z0-9_./:,@+=%-]*" value != null then
      "${name}=${value}"
    else
      ''${name}="${
        lib.escape [
          "\\"
          "\""
          "`"
          "$"
        ] value
      }"'';

  # Same keys as the runtime file /run/nixecs/ecs.env written by `nixecs apply`.
  # Like the tool, attributes and tags are only written when there are some.
  settingsEnvironment = {
    ECS_CLUSTER = cfg.cluster;
    ECS_ENABLE_SPOT_INSTANCE_DRAINING = boolString cfg.spotDraining;
    ECS_RESERVED_MEMORY = toString cfg.reservedMemoryMiB;
    ECS_LOGLEVEL = cfg.logLevel;
    ECS_IMAGE_PULL_BEHAVIOR = cfg.imagePullBehavior;
    ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION = cfg.taskCleanupWait;
    ECS_CONTAINER_STOP_TIMEOUT = cfg.containerStopTimeout;
    ECS_DISABLE_PRIVILEGED = boolString (!cfg.privileged);
  }
  // lib.optionalAttrs (cfg.attributes != { }) {
    ECS_INSTANCE_ATTRIBUTES = builtins.toJSON cfg.attributes;
  }
  // lib.optionalAttrs (cfg.tags != { }) {
    ECS_CONTAINER_INSTANCE_TAGS = builtins.toJSON cfg.tags;
  };

  # What ecs-init passes to the agent container on the ECS-optimized AMI,
  # translated to an agent that runs natively (host paths instead of the
  # container's /data and /log mounts).
  hostEnvironment = {
    ECS_DATADIR = "/var/lib/ecs/data";
    ECS_LOGFILE = "/var/log/ecs/ecs-agent.log";
    ECS_UPDATE_DOWNLOAD_DIR = "/var/cache/ecs";
    # The agent comes from the Nix store; it is updated by a new image.
    ECS_UPDATES_ENABLED = "false";
    ECS_AVAILABLE_LOGGING_DRIVERS = builtins.toJSON cfg.loggingDrivers;
    ECS_ENABLE_TASK_IAM_ROLE = boolString cfg.taskIamRole;
    ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST = boolString cfg.taskIamRole;
    ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS = boolString cfg.introspection.allowOffhost;
  };

  environment = hostEnvironment // settingsEnvironment // cfg.extraEnvironment;

  ecsConfig = pkgs.writeText "ecs.config" (
    lib.concatStringsSep "\n" (lib.mapAttrsToList envLine environment) + "\n"
  );

  # The netfilter rules of ecs-init plus the two a NixOS host needs
  # (lib/ecs-netfilter.nix cites the upstream source of each).
  dockerBridge = config.virtualisation.docker.daemon.settings.bridge or "docker0";
  netfilter = import ./lib/ecs-netfilter.nix {
    bridge = dockerBridge;
    inherit (cfg) localhostTrafficFilter allowContainerInstanceMetadata;
    allowOffhostIntrospection = cfg.introspection.allowOffhost;
    iptables = "${pkgs.iptables}/bin/iptables";
    ip6tables = "${pkgs.iptables}/bin/ip6tables";
  };
in
{
  imports = [
    ./common.nix
    (lib.mkRemovedOptionModule [ "nixecs" "ecs" "introspection" "interface" ] ''
      The introspection port (51678) is now dropped on every interface but lo
      and accepted on Docker's default bridge, for IPv4 and IPv6, as current
      ecs-init does; there is no interface to choose. Remove the setting.
    '')
  ];

  options.nixecs.ecs = {
    enable = lib.mkEnableOption "this host as an Amazon ECS container instance (Docker and the ECS agent)";

    cluster = lib.mkOption {
      type = lib.types.strMatching "^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$";
      default = "default";
      example = "prod";
      description = ''
        The ECS cluster the agent registers this instance with (`ECS_CLUSTER`).
        The runtime file {file}`/run/nixecs/ecs.env` overrides it.
      '';
    };

    attributes = lib.mkOption {
      type = lib.types.attrsOf lib.types.str;
      default = { };
      example = {
        tier = "web";
      };
      description = "Custom container instance attributes for task placement constraints (`ECS_INSTANCE_ATTRIBUTES`).";
    };

    tags = lib.mkOption {
      type = lib.types.attrsOf lib.types.str;
      default = { };
      example = {
        team = "payments";
      };
      description = "Tags the agent puts on the container instance when it registers (`ECS_CONTAINER_INSTANCE_TAGS`).";
    };

    spotDraining = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Whether the agent sets the instance to DRAINING when it receives a Spot interruption notice (`ECS_ENABLE_SPOT_INSTANCE_DRAINING`).";
    };

    reservedMemoryMiB = lib.mkOption {
      type = lib.types.ints.unsigned;
      default = 0;
      example = 256;
      description = ''
        Memory in MiB the agent does not offer to tasks, left for the
        operating system, Docker and the agent (`ECS_RESERVED_MEMORY`).
      '';
    };

    logLevel = lib.mkOption {
      type = lib.types.enum [
        "debug"
        "info"
        "warn"
        "error"
        "crit"
      ];
      default = "info";
      description = "The agent's log level (`ECS_LOGLEVEL`).";
    };

    imagePullBehavior = lib.mkOption {
      type = lib.types.enum [
        "default"
        "always"
        "once"
        "prefer-cached"
      ];
      default = "default";
      description = "When the agent pulls container images (`ECS_IMAGE_PULL_BEHAVIOR`).";
    };

    taskCleanupWait = lib.mkOption {
      type = duration;
      default = "3h";
      example = "1h";
      description = "How long the agent keeps stopped task containers before removing them (`ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION`), as `<n>s`, `<n>m` or `<n>h`.";
    };

    containerStopTimeout = lib.mkOption {
      type = duration;
      default = "30s";
      description = "Time between SIGTERM and SIGKILL when the agent stops a container (`ECS_CONTAINER_STOP_TIMEOUT`), as `<n>s`, `<n>m` or `<n>h`.";
    };

    privileged = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Whether tasks may run privileged containers; `false` sets `ECS_DISABLE_PRIVILEGED=true`.";
    };

    loggingDrivers = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [
        "json-file"
        "awslogs"
        "none"
      ];
      description = "Docker log drivers tasks may use (`ECS_AVAILABLE_LOGGING_DRIVERS`).";
    };

    taskIamRole = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = ''
        Whether tasks get IAM role credentials from the agent's credentials
        endpoint 169.254.170.2 (`ECS_ENABLE_TASK_IAM_ROLE` and
        `ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST`). The route to the agent
        (`net.ipv4.conf.all.route_localnet` and the NAT rules redirecting
        169.254.170.2:80 to 127.0.0.1:51679) is installed either way, as
        ecs-init does: the task metadata endpoint v3/v4 is there too.
      '';
    };

    localhostTrafficFilter = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = ''
        Whether to drop packets for 127.0.0.0/8 that arrive from outside the
        host, as ecs-init does: `route_localnet` would otherwise expose
        loopback services to the network. Only disable this if you know why
        (ecs-init's `ECS_SKIP_LOCALHOST_TRAFFIC_FILTER`).
      '';
    };

    introspection = {
      allowOffhost = lib.mkOption {
        type = lib.types.bool;
        default = false;
        description = ''
          Whether the agent's introspection API (TCP port 51678) may be reached
          from other hosts. By default a netfilter rule drops such traffic, as
          ecs-init does (`ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS`).
        '';
      };

    };

    allowContainerInstanceMetadata = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = ''
        Whether containers on Docker bridge networks may reach the instance
        metadata service (169.254.169.254, and fd00:ec2::254 over IPv6). By
        default a rule in Docker's `DOCKER-USER` chain drops such traffic:
        the instance role's credentials would otherwise be every task's.
        Tasks get their own role from 169.254.170.2 instead. The host
        itself and host-network tasks are not affected; also keep the
        instance's IMDS hop limit at 1 (the fleet's `metadata.hop_limit`).
      '';
    };

    extraEnvironment = lib.mkOption {
      type = lib.types.attrsOf lib.types.str;
      default = { };
      example = {
        ECS_ENABLE_CONTAINER_METADATA = "true";
      };
      description = ''
        Further agent variables, merged last into {file}`/etc/ecs/ecs.config`
        (they override the variables the options above set). See the ECS
        agent's documentation for the keys. The runtime file
        {file}`/run/nixecs/ecs.env` still overrides them.
      '';
    };

    configFile = lib.mkOption {
      type = lib.types.path;
      readOnly = true;
      default = ecsConfig;
      defaultText = lib.literalMD "generated from the `nixecs.ecs` options";
      description = "The generated agent environment file, installed as {file}`/etc/ecs/ecs.config`.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = lib.all (v: !(lib.hasInfix "\n" v)) (lib.attrValues environment);
        message = "nixecs.ecs: agent variables cannot contain newlines; check nixecs.ecs.attributes, nixecs.ecs.tags and nixecs.ecs.extraEnvironment.";
      }
      {
        assertion = lib.all (n: builtins.match "[A-Za-z_][A-Za-z0-9_]*" n != null) (
          lib.attrNames cfg.extraEnvironment
        );
        message = "nixecs.ecs.extraEnvironment: every name must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*).";
      }
      {
        assertion = lib.all (
          name:
          builtins.match "[A-Za-z0-9_./@-]{1,128}" name != null
          && builtins.match "[A-Za-z0-9_./@\\: -]{1,128}" cfg.attributes.${name} != null
        ) (lib.attrNames cfg.attributes);
        message = "nixecs.ecs.attributes: ECS allows names of 1-128 letters, digits and - _ . @ /, and values of 1-128 letters, digits, spaces and - _ . @ / \\ :.";
      }
      {
        assertion = lib.all (
          name:
          lib.stringLength name >= 1
          && lib.stringLength name <= 128
          && lib.stringLength cfg.tags.${name} <= 256
        ) (lib.attrNames cfg.tags);
        message = "nixecs.ecs.tags: ECS allows tag keys of 1-128 and values of at most 256 characters.";
      }
      {
        assertion = !(cfg.extraEnvironment ? ECS_CLUSTER);
        message = "nixecs.ecs.extraEnvironment: set the cluster with nixecs.ecs.cluster, not ECS_CLUSTER.";
      }
      {
        assertion = lib.elem (config.boot.kernel.sysctl."net.ipv4.conf.all.route_localnet" or null) [
          1
          true
          "1"
        ];
        message = ''nixecs.ecs needs boot.kernel.sysctl."net.ipv4.conf.all.route_localnet" = 1 (bridge-mode tasks reach the agent's task metadata and credentials endpoint through it); do not override it.'';
      }
      {
        assertion = builtins.match "[A-Za-z0-9_.-]{1,15}" dockerBridge != null;
        message = "virtualisation.docker.daemon.settings.bridge must be a network interface name (at most 15 letters, digits, '_', '.', '-').";
      }
    ];

    environment.etc."ecs/ecs.config".source = ecsConfig;

    # Docker for ECS. Everything here is a default a host may override.
    virtualisation.docker = {
      enable = true;
      # Keep task containers running while dockerd restarts (e.g. on switch).
      liveRestore = lib.mkDefault true;
      # ECS tasks choose their log driver (usually awslogs); json-file is what
      # the ECS-optimized AMI uses for containers that do not.
      logDriver = lib.mkDefault "json-file";
      daemon.settings = {
        log-opts = lib.mkDefault {
          max-size = "10m";
          max-file = "3";
        };
        # The ECS-optimized AMI raises the default open-file limit of containers.
        default-ulimits = lib.mkDefault {
          nofile = {
            Name = "nofile";
            Soft = 32768;
            Hard = 65536;
          };
        };
      };
      # The agent removes stopped task containers and unused images itself
      # (ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION, automated image cleanup);
      # pruning only what is older than a day never races it.
      autoPrune = {
        enable = lib.mkDefault true;
        dates = lib.mkDefault "daily";
        flags = lib.mkDefault [
          "--filter"
          "until=24h"
        ];
      };
    };

    # The upstream module runs `agent` natively after network.target only; it
    # is extended below with the ordering, environment and directories ecs-init
    # provides on the ECS-optimized AMI.
    services.ecs-agent.enable = true;

    systemd.services.ecs-agent = {
      after = [
        "docker.service"
        "network-online.target"
        "nixecs-ecs-netfilter.service"
      ];
      wants = [
        "network-online.target"
        "nixecs-ecs-netfilter.service"
      ];
      requires = [ "docker.service" ];
      restartTriggers = [ ecsConfig ];
      serviceConfig = {
        # Later files win: the baked configuration, then the one `nixecs apply`
        # writes at boot from settings userdata (optional: "-").
        EnvironmentFile = [
          "/etc/ecs/ecs.config"
          "-/run/nixecs/ecs.env"
        ];
        StateDirectory = [
          "ecs"
          "ecs/data"
        ];
        StateDirectoryMode = "0700";
        LogsDirectory = "ecs";
        CacheDirectory = "ecs";
        Restart = "on-failure";
        RestartSec = "5s";
        # The agent exits 5 on a terminal error (e.g. the cluster does not
        # exist); restarting cannot fix that.
        RestartPreventExitStatus = 5;
      };
    };

    # Lets the DNAT to 127.0.0.1:51679 route packets from task bridges.
    # Always, as ecs-init's engine.go PreStart does (loopbackRouting.Enable),
    # not only with task roles: TMDS v3/v4 is on the same endpoint.
    boot.kernel.sysctl."net.ipv4.conf.all.route_localnet" = 1;

    # On an nftables-based firewall the accept of the DNAT'd requests must be
    # inside the `inet nixos-fw` table (see lib/ecs-netfilter.nix). The option
    # exists only where nixpkgs' firewall-nftables.nix is imported.
    networking.firewall = lib.optionalAttrs (options.networking.firewall ? extraInputRules) {
      extraInputRules = netfilter.nftInputRules;
    };

    # A dedicated unit rather than networking.firewall.extraCommands: ECS hosts
    # usually rely on security groups and may disable the NixOS firewall, and
    # the firewall can be nftables-based; these rules must exist either way.
    # Rules are inserted at the top of INPUT, ahead of the iptables firewall's
    # `-A INPUT -j nixos-fw`, which a firewall reload re-appends without
    # touching them (nixpkgs firewall-iptables.nix). The rules name no
    # interface but lo and the Docker bridge, so nothing depends on the
    # network being up.
    systemd.services.nixecs-ecs-netfilter = {
      description = "Netfilter rules for ECS tasks (task metadata and credentials endpoint, introspection port, instance metadata)";
      wantedBy = [ "multi-user.target" ];
      # Before dockerd: its containers are covered from the first one on.
      before = [
        "docker.service"
        "ecs-agent.service"
      ];
      after = [
        "firewall.service"
        "nftables.service"
      ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        TimeoutSec = "60s";
      };
      script = netfilter.start;
      preStop = netfilter.stop;
    };
  };
}
