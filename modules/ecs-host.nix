# An Amazon ECS container instance: Docker configured for ECS, the ECS agent
# ordered after Docker and after the boot-time userdata and secrets units, and
# the host networking that ecs-init sets up on the ECS-optimized AMI (task IAM
# role endpoint 169.254.170.2, introspection port protection).
{
  config,
  options,
  lib,
  pkgs,
  utils,
  ...
}:
let
  cfg = config.nixecs.ecs;

  # The agent environment and the checks of its values: builtins only, so that
  # tools/tests/test_agent_settings.py evaluates the same file with real Nix.
  agentEnv = import ./lib/agent-environment.nix;

  duration = lib.types.strMatching agentEnv.durationPattern;

  environment = agentEnv.environment cfg;
  ecsConfig = pkgs.writeText "ecs.config" (agentEnv.text cfg);

  badAttributes = agentEnv.badAttributes cfg.attributes;
  badTags = agentEnv.badTags cfg.tags;
  overriddenExtra = agentEnv.overriddenExtra cfg.extraEnvironment;
  unknownExtra = agentEnv.unknownExtra cfg.extraEnvironment;
  featureExtra = lib.attrNames (lib.intersectAttrs cfg.featureEnvironment cfg.extraEnvironment);
  otherExtra = removeAttrs cfg.extraEnvironment featureExtra;

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
      # The agent parses ECS_RESERVED_MEMORY with strconv.ParseUint(v, 10, 16)
      # (v1.105.0 agent/config/parse.go parseEnvVariableUint16): larger values
      # are ignored.
      type = lib.types.ints.u16;
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
      description = "How long the agent keeps stopped task containers before removing them (`ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION`), as `<n>s`, `<n>m` or `<n>h`; at least `1s` (the agent replaces shorter values with its default 3h).";
    };

    containerStopTimeout = lib.mkOption {
      type = duration;
      default = "30s";
      description = "Time between SIGTERM and SIGKILL when the agent stops a container (`ECS_CONTAINER_STOP_TIMEOUT`), as `<n>s`, `<n>m` or `<n>h`; at least `1s` (the agent replaces `0s` with its default 30s).";
    };

    privileged = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Whether tasks may run privileged containers; `false` sets `ECS_DISABLE_PRIVILEGED=true`.";
    };

    loggingDrivers = lib.mkOption {
      type = lib.types.listOf (lib.types.enum agentEnv.knownLoggingDrivers);
      # The ECS-optimized AMI's list (ecs-init/docker/docker.go, cited in
      # ./lib/agent-environment.nix).
      default = agentEnv.amiLoggingDrivers;
      defaultText = lib.literalExpression ''[ "json-file" "syslog" "awslogs" "fluentd" "none" ]'';
      example = [
        "json-file"
        "awslogs"
        "awsfirelens"
        "none"
      ];
      description = ''
        Docker log drivers tasks may use (`ECS_AVAILABLE_LOGGING_DRIVERS`): the
        drivers the agent knows, plus `awsfirelens` for FireLens. The default
        is the ECS-optimized AMI's list.
      '';
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
        Further agent variables for the baked configuration
        ({option}`nixecs.ecs.configFile`). Only names the agent reads are
        accepted (the generated table {file}`modules/agent-vars.json`), none
        whose feature this host does not provide (its `needs`: GPU support,
        task ENI, volume plugin capabilities, ...), and none that an option
        above sets: use that option instead.
        `ECS_ENABLE_CONTAINER_METADATA` cannot be enabled: the native agent
        would mount an empty directory into tasks. Values written to
        {file}`/etc/ecs/ecs.config` and {file}`/run/nixecs/ecs.env` override
        these.
      '';
    };

    osFamilyDetailed = lib.mkOption {
      type = lib.types.strMatching "[A-Za-z0-9._-]+";
      internal = true;
      # ecs-init's GetLinuxOSFamily: os-release's ID and VERSION_ID joined by
      # "_" (aws/amazon-ecs-agent v1.105.0 ecs-init/config/os_family.go), which
      # NixOS writes from these two options (nixos/modules/misc/version.nix).
      default = "${config.system.nixos.distroId or "nixos"}_${config.system.nixos.release}";
      defaultText = lib.literalExpression ''"''${config.system.nixos.distroId}_''${config.system.nixos.release}"'';
      description = ''
        The detailed OS family the agent reports (`ECS_DETAILED_OS_FAMILY`,
        registered as the attribute `ecs.os-type-detailed`), as ecs-init sets
        it on the AMI; without it the native agent reports `LINUX`.
      '';
    };

    featureEnvironment = lib.mkOption {
      type = lib.types.attrsOf lib.types.str;
      default = { };
      internal = true;
      description = ''
        Agent variables a feature module sets for the feature it installs
        (`nixecs.ecs.gpu.enable`: `ECS_ENABLE_GPU_SUPPORT`, `ECS_NVIDIA_RUNTIME`),
        written to the baked configuration. Not for users: their variables go in
        {option}`nixecs.ecs.extraEnvironment`.
      '';
    };

    featureExecStartPre = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      internal = true;
      description = ''
        Commands a feature module runs before the agent, ahead of the ones
        below (`nixecs.ecs.gpu.enable`: the GPU information file), as
        ecs-init's `pre-start` runs its feature setup first (v1.105.0
        ecs-init/engine/engine.go PreStart calls PreStartGPU before anything
        else). Each is one escaped Exec line (utils.escapeSystemdExecArgs).
        In the agent's unit rather than a unit of their own: a failure is
        retried with the agent (Restart=), where a failed required unit would
        leave the agent stopped.
      '';
    };

    configFile = lib.mkOption {
      type = lib.types.path;
      readOnly = true;
      default = ecsConfig;
      defaultText = lib.literalMD "generated from the `nixecs.ecs` options";
      description = ''
        The generated agent environment file (the agent's first
        `EnvironmentFile=`), also installed as {file}`/etc/ecs/ecs.nixos.config`.
        {file}`/etc/ecs/ecs.config` is a plain file for lines appended at boot,
        read after it.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    # The variable table (../agent-vars.json) and every check of
    # extraEnvironment were read from one agent release, which
    # ../pkgs/ecs-agent builds (its tag = the table's ref; test_agent_settings.py
    # holds the two together). An agent set here by hand may read other
    # variables: say so rather than check against the wrong table.
    warnings =
      let
        runs = config.services.ecs-agent.package.version or "unknown";
        table = lib.removePrefix "v" agentEnv.agentVars.ref;
      in
      lib.optional (runs != table) "nixecs.ecs: services.ecs-agent.package is ECS agent ${runs}, but the variable table nixecs checks agent settings against (modules/agent-vars.json, the fleet's ecs.extra) was generated from ${agentEnv.agentVars.ref}: variables added or removed since are refused or accepted wrongly. Leave the package at its default (pkgs/ecs-agent, ${table}), or regenerate the table for ${runs} with tools/gen_agent_vars.py and bump pkgs/ecs-agent with it.";

    # Graviton (arm64) instance types boot UEFI only (EC2 DescribeInstanceTypes
    # SupportedBootModes; "uefi on Graviton instance types",
    # https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-boot-mode.html).
    # nixpkgs' amazon-options.nix defaults ec2.efi to isAarch64, and the image's
    # boot_mode follows it (`ami publish` refuses a legacy-bios arm64 image):
    # only an explicit ec2.efi = false on aarch64 is wrong.
    assertions =
      lib.optional (options ? ec2 && options.ec2 ? efi) {
        assertion = !pkgs.stdenv.hostPlatform.isAarch64 || config.ec2.efi;
        message = "nixecs.ecs: an aarch64 (Graviton) host must boot UEFI: Graviton instances support no legacy BIOS; leave ec2.efi at its default (true on aarch64).";
      }
      ++ [
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
          assertion = badAttributes == { };
          message = "nixecs.ecs.attributes: ECS refuses ${agentEnv.describe badAttributes}: names are 1-128 letters, digits and - _ . / \\ (no @); values are 1-128 letters, digits, spaces and - _ . @ / \\ :, not starting or ending with a space.";
        }
        {
          assertion = badTags == { } && agentEnv.count cfg.tags <= agentEnv.tagMaxCount;
          message = "nixecs.ecs.tags: ECS allows at most 50 tags (here ${toString (agentEnv.count cfg.tags)}), keys of 1-128 and values of at most 256 characters of letters, digits, spaces and + - = . _ : / @, and no aws: prefix; it refuses ${agentEnv.describe badTags}.";
        }
        {
          assertion =
            agentEnv.agentHonoursDuration cfg.taskCleanupWait
            && agentEnv.agentHonoursDuration cfg.containerStopTimeout;
          message = "nixecs.ecs.taskCleanupWait (${cfg.taskCleanupWait}) and nixecs.ecs.containerStopTimeout (${cfg.containerStopTimeout}) must be at least 1s and at most ${toString agentEnv.goDurationMaxSeconds}s: the agent silently replaces other values with its defaults (3h and 30s).";
        }
        {
          assertion = overriddenExtra == [ ];
          message = "nixecs.ecs.extraEnvironment: ${lib.concatMapStringsSep "; " (n: "${n} is set by ${agentEnv.typedVariables.${n}}") overriddenExtra}; set it there, not in extraEnvironment.";
        }
        {
          assertion = unknownExtra == [ ];
          message = "nixecs.ecs.extraEnvironment: ${lib.concatStringsSep ", " unknownExtra}: not a variable the ECS agent ${agentEnv.agentVars.ref} reads (modules/agent-vars.json, generated from its source by tools/gen_agent_vars.py).";
        }
        {
          # A feature module's variables (ecs-gpu.nix) are the host's own here.
          assertion = featureExtra == [ ];
          message = "nixecs.ecs.extraEnvironment: ${lib.concatStringsSep ", " featureExtra} is set by nixecs.ecs.gpu.enable on this host; remove it from extraEnvironment.";
        }
        {
          assertion = agentEnv.neededExtra otherExtra == [ ];
          message = "nixecs.ecs.extraEnvironment: ${agentEnv.describeNeeded otherExtra}.";
        }
        {
          assertion = agentEnv.secretExtra cfg.extraEnvironment == [ ];
          message = ''nixecs.ecs.extraEnvironment: ECS_ENGINE_AUTH_DATA holds registry credentials, and extraEnvironment is written to the world-readable Nix store: keep the agent's JSON configuration {"EngineAuthType": ..., "EngineAuthData": ...} in an SSM SecureString, fetch it with nixecs.secrets.<name> and set ECS_AGENT_CONFIG_FILE_PATH to its path (nixecs.secrets.<name>.path) instead (aws/amazon-ecs-agent agent/dockerclient/dockerauth/doc.go).'';
        }
        {
          assertion = !(agentEnv.containerMetadataEnabled cfg.extraEnvironment);
          message = "nixecs.ecs.extraEnvironment: ECS_ENABLE_CONTAINER_METADATA does not work with the native agent: it mounts ECS_HOST_DATA_DIR + ECS_DATADIR (agent/containermetadata/write_metadata_unix.go), an empty directory on this host; use the task metadata endpoint v4 (ECS_CONTAINER_METADATA_URI_V4) instead.";
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

    # The baked configuration, for people to read; the agent reads it first.
    environment.etc."ecs/ecs.nixos.config".source = ecsConfig;
    # /etc/ecs/ecs.config is a plain, persistent file, so that script userdata
    # can append to it as AWS documents for the ECS-optimized AMI
    # (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-agent-config.html:
    # `echo "ECS_CLUSTER=MyCluster" >> /etc/ecs/ecs.config`). Not an
    # environment.etc entry: setup-etc.pl (nixos/modules/system/etc) replaces
    # a copied (mode != "symlink") file on every activation, every boot
    # included, and script userdata runs once, so appended lines would be
    # lost at the next reboot. tmpfiles `f` creates it empty only when missing.
    systemd.tmpfiles.rules = [
      "d /etc/ecs 0755 root root -"
      "f /etc/ecs/ecs.config 0644 root root -"
    ];

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
    # The release the variable tables were generated from (../pkgs/ecs-agent
    # explains why nixpkgs' own is not used).
    services.ecs-agent.package = lib.mkDefault (pkgs.callPackage ../pkgs/ecs-agent/package.nix { });

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
        # Later files win (systemd.exec(5), EnvironmentFile=): the baked
        # configuration, then lines appended to /etc/ecs/ecs.config (script
        # userdata, by hand), then what `nixecs apply` writes at boot from
        # settings userdata, which the fleet file controls ("-": optional).
        EnvironmentFile = [
          "/etc/ecs/ecs.nixos.config"
          "-/etc/ecs/ecs.config"
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
        # Router advertisements off on Docker's bridge, as ecs-init's PreStart
        # does before it starts the agent (v1.105.0 ecs-init/engine/engine.go
        # PreStart, ecs-init/exec/sysctl/sysctl.go Ipv6RouterAdvertisements:
        # `sysctl -e -w net.ipv6.conf.docker0.accept_ra=0`, fatal on error).
        # Here and not in boot.kernel.sysctl: the bridge exists only once
        # dockerd has started, which this unit is ordered after; -e ignores
        # the key when IPv6 is off.
        # utils.escapeSystemdExecArgs, as every Exec line here (userdata.nix).
        # The features' commands first (featureExecStartPre).
        ExecStartPre = cfg.featureExecStartPre ++ [
          (utils.escapeSystemdExecArgs [
            "${pkgs.procps}/bin/sysctl"
            "-e"
            "-w"
            "net.ipv6.conf.${dockerBridge}.accept_ra=0"
          ])
        ];
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
