# An Amazon ECS container instance: Docker configured for ECS, the ECS agent
# ordered after Docker and after the boot-time userdata and secrets units, and
# the host networking that ecs-init sets up on the ECS-optimized AMI (task IAM
# role endpoint 169.254.170.2, introspection port protection).
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.nixecs.ecs;

  # The fleet schema's durations (tools/src/nixecs/settings.py DURATION_RE).
  duration = lib.types.strMatching "^[0-9]{1,9}(s|m|h)$";
  durationSeconds =
    d:
    lib.toIntBase10 (lib.substring 0 (lib.stringLength d - 1) d)
    * {
      s = 1;
      m = 60;
      h = 3600;
    }
    .${lib.substring (lib.stringLength d - 1) 1 d};
  # Go's time.Duration is an int64 of nanoseconds (aws/amazon-ecs-agent v1.105.0
  # agent/config/parse.go parseEnvVariableDuration uses time.ParseDuration):
  # longer values fail to parse and the agent falls back to its default.
  goDurationMaxSeconds = 9223372036;
  # Below 1s the agent replaces the task cleanup wait with its default 3h
  # (agent/config/config.go validateAndOverrideBounds,
  # minimumTaskCleanupWaitDuration) and a 0 stop timeout with its default 30s
  # (parse.go parseDockerStopTimeout, then the merge with DefaultConfig).
  agentHonours = d: durationSeconds d >= 1 && durationSeconds d <= goDurationMaxSeconds;

  # The environment variables the agent reads, generated from its source by
  # tools/gen_agent_vars.py (repository, tag and commit recorded in the file).
  agentVars = lib.importJSON ./agent-vars.json;

  # Log drivers the agent knows: v1.105.0 agent/dockerclient/logging_drivers.go
  # LoggingDriverMinimumVersion, plus awsfirelens, which validateAndOverrideBounds
  # (agent/config/config.go) accepts too. Any other name stops the agent.
  knownLoggingDrivers = [
    "json-file"
    "syslog"
    "journald"
    "gelf"
    "fluentd"
    "awslogs"
    "splunk"
    "logentries"
    "sumologic"
    "none"
    "awsfirelens"
  ];

  # ECS API reference, Attribute (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Attribute.html):
  # names of 1-128 letters, digits, - _ / \ . ; values of 1-128 letters,
  # digits, - _ . @ / \ : and spaces, not starting or ending with a space.
  # Same rules as tools/src/nixecs/settings.py ATTRIBUTE_NAME_RE/ATTRIBUTE_VALUE_RE.
  validAttributeName = n: builtins.match "[A-Za-z0-9_./\\-]{1,128}" n != null;
  validAttributeValue =
    v:
    builtins.match "[A-Za-z0-9_.@/\\: -]{1,128}" v != null
    && !(lib.hasPrefix " " v)
    && !(lib.hasSuffix " " v);
  # ECS API reference, Tag (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Tag.html):
  # at most 50; keys of 1-128, values of 0-256 characters matching
  # ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$; no aws: prefix in any case. Nix regexes have
  # no Unicode classes: ASCII is checked exactly, other characters are left to
  # ECS, and lengths count bytes (the Python side counts characters exactly).
  validTagText = t: builtins.match "([A-Za-z0-9 _.:/=+@-]|[^[:cntrl:] -~])*" t != null;
  awsPrefixed = t: lib.toLower (lib.substring 0 4 t) == "aws:";
  badTags = lib.filterAttrs (
    k: v:
    !(
      lib.stringLength k >= 1
      && lib.stringLength k <= 128
      && lib.stringLength v <= 256
      && validTagText k
      && validTagText v
      && !(awsPrefixed k)
      && !(awsPrefixed v)
    )
  ) cfg.tags;
  badAttributes = lib.filterAttrs (
    n: v: !(validAttributeName n && validAttributeValue v)
  ) cfg.attributes;

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
    # FireLens bind-mounts ECS_HOST_DATA_DIR + "/data/firelens/<task>/..."
    # (v1.105.0 agent/api/task/task.go firelens*BindFormat) and writes those
    # files under ECS_DATADIR + "/firelens/<task>" (taskresource/firelens/
    # firelens_unix.go NewFirelensResource): host data dir + "/data" must be
    # ECS_DATADIR. /var/lib/ecs is also the agent's default (config_unix.go).
    ECS_HOST_DATA_DIR = "/var/lib/ecs";
    ECS_LOGFILE = "/var/log/ecs/ecs-agent.log";
    # Unset, the audit log goes to /log/audit.log (v1.105.0
    # agent/config/config_unix.go defaultCredentialsAuditLogFile): /log is the
    # agent container's mount of the host's /var/log/ecs under ecs-init
    # (ecs-init/docker/docker.go logDir), the root directory for a native agent.
    ECS_AUDIT_LOGFILE = "/var/log/ecs/audit.log";
    ECS_UPDATE_DOWNLOAD_DIR = "/var/cache/ecs";
    # The agent comes from the Nix store; it is updated by a new image.
    ECS_UPDATES_ENABLED = "false";
    ECS_AVAILABLE_LOGGING_DRIVERS = builtins.toJSON cfg.loggingDrivers;
    ECS_ENABLE_TASK_IAM_ROLE = boolString cfg.taskIamRole;
    ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST = boolString cfg.taskIamRole;
    ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS = boolString cfg.introspection.allowOffhost;
  };

  environment = cfg.extraEnvironment // hostEnvironment // settingsEnvironment;

  # Variables a typed option sets, with the option to use instead; `extraEnvironment`
  # may not set them (tools/src/nixecs/settings.py TYPED_VARIABLES/HOST_VARIABLES).
  typedVariables = {
    ECS_CLUSTER = "nixecs.ecs.cluster";
    ECS_ENABLE_SPOT_INSTANCE_DRAINING = "nixecs.ecs.spotDraining";
    ECS_RESERVED_MEMORY = "nixecs.ecs.reservedMemoryMiB";
    ECS_LOGLEVEL = "nixecs.ecs.logLevel";
    ECS_IMAGE_PULL_BEHAVIOR = "nixecs.ecs.imagePullBehavior";
    ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION = "nixecs.ecs.taskCleanupWait";
    ECS_CONTAINER_STOP_TIMEOUT = "nixecs.ecs.containerStopTimeout";
    ECS_DISABLE_PRIVILEGED = "nixecs.ecs.privileged";
    ECS_INSTANCE_ATTRIBUTES = "nixecs.ecs.attributes";
    ECS_CONTAINER_INSTANCE_TAGS = "nixecs.ecs.tags";
    ECS_AVAILABLE_LOGGING_DRIVERS = "nixecs.ecs.loggingDrivers";
    ECS_ENABLE_TASK_IAM_ROLE = "nixecs.ecs.taskIamRole";
    ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST = "nixecs.ecs.taskIamRole";
    ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS = "nixecs.ecs.introspection.allowOffhost";
  }
  // lib.mapAttrs (_: _: "nothing: the host sets it for the native agent") (
    removeAttrs hostEnvironment [
      "ECS_AVAILABLE_LOGGING_DRIVERS"
      "ECS_ENABLE_TASK_IAM_ROLE"
      "ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST"
      "ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS"
    ]
  );
  overridden = lib.intersectLists (lib.attrNames cfg.extraEnvironment) (lib.attrNames typedVariables);
  unknownExtra = lib.filter (n: !(lib.elem n agentVars.variables)) (lib.attrNames cfg.extraEnvironment);

  ecsConfig = pkgs.writeText "ecs.config" (
    lib.concatStringsSep "\n" (lib.mapAttrsToList envLine environment) + "\n"
  );

  iptables = "${pkgs.iptables}/bin/iptables";

  # ecs-init's netfilter rules (ecs-init/exec/iptables/iptables.go), as
  # (table, chain, rule) triples. Each is added idempotently (-C || -I/-A) and
  # removed on stop (-D), so restarting the unit never duplicates a rule.
  credentialsRules = [
    {
      table = "nat";
      chain = "PREROUTING";
      action = "-A";
      rule = "-p tcp -d 169.254.170.2 --dport 80 -j DNAT --to-destination 127.0.0.1:51679";
    }
    {
      table = "nat";
      chain = "OUTPUT";
      action = "-A";
      rule = "-p tcp -d 169.254.170.2 --dport 80 -j REDIRECT --to-ports 51679";
    }
  ];
  localhostFilterRules = [
    {
      table = "filter";
      chain = "INPUT";
      action = "-I";
      rule = "--dst 127.0.0.0/8 ! --src 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP";
    }
  ];
  introspectionRules = [
    {
      table = "filter";
      chain = "INPUT";
      action = "-I";
      rule = ''-p tcp -i "$iface" --dport 51678 -j DROP'';
    }
  ];
  rules =
    lib.optionals cfg.taskIamRole (
      credentialsRules ++ lib.optionals cfg.localhostTrafficFilter localhostFilterRules
    )
    ++ lib.optionals (!cfg.introspection.allowOffhost) introspectionRules;

  addRule = r: ''
    ${iptables} -w -t ${r.table} -C ${r.chain} ${r.rule} 2>/dev/null \
      || ${iptables} -w -t ${r.table} ${r.action} ${r.chain} ${r.rule}
  '';
  deleteRule = r: ''
    while ${iptables} -w -t ${r.table} -C ${r.chain} ${r.rule} 2>/dev/null; do
      ${iptables} -w -t ${r.table} -D ${r.chain} ${r.rule}
    done
  '';
  detectInterface =
    if cfg.introspection.interface != null then
      ''iface=${lib.escapeShellArg cfg.introspection.interface}''
    else
      ''
        # Like ecs-init: the interface of the IPv4 default route, else eth0.
        iface=$(${pkgs.iproute2}/bin/ip -4 route show default | ${pkgs.gawk}/bin/awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
        iface=''${iface:-eth0}
      '';
in
{
  imports = [ ./common.nix ];

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
      type = lib.types.listOf (lib.types.enum knownLoggingDrivers);
      # What ecs-init passes the agent on the ECS-optimized AMI
      # (aws/amazon-ecs-agent v1.105.0 ecs-init/docker/docker.go getContainerConfig).
      default = [
        "json-file"
        "syslog"
        "awslogs"
        "fluentd"
        "none"
      ];
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
        `ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST`). Sets
        `net.ipv4.conf.all.route_localnet` and the NAT rules ecs-init installs
        on the ECS-optimized AMI, which redirect 169.254.170.2:80 to the
        agent on 127.0.0.1:51679.
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

      interface = lib.mkOption {
        type = lib.types.nullOr lib.types.str;
        default = null;
        example = "ens5";
        description = ''
          The interface on which off-host introspection traffic is dropped.
          `null` uses the interface of the IPv4 default route at boot
          (falling back to `eth0`), like ecs-init.
        '';
      };
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
        accepted (the generated table {file}`modules/agent-vars.json`), and none
        that an option above sets: use that option instead.
        `ECS_ENABLE_CONTAINER_METADATA` cannot be enabled: the native agent
        would mount an empty directory into tasks. Values written to
        {file}`/etc/ecs/ecs.config` and {file}`/run/nixecs/ecs.env` override
        these.
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
        assertion = badAttributes == { };
        message = "nixecs.ecs.attributes: ECS refuses ${lib.concatStringsSep ", " (lib.mapAttrsToList (n: v: "${builtins.toJSON n} = ${builtins.toJSON v}") badAttributes)}: names are 1-128 letters, digits and - _ . / \\ (no @); values are 1-128 letters, digits, spaces and - _ . @ / \\ :, not starting or ending with a space.";
      }
      {
        assertion = badTags == { } && lib.length (lib.attrNames cfg.tags) <= 50;
        message = "nixecs.ecs.tags: ECS allows at most 50 tags (here ${toString (lib.length (lib.attrNames cfg.tags))}), keys of 1-128 and values of at most 256 characters of letters, digits, spaces and + - = . _ : / @, and no aws: prefix; it refuses ${lib.concatStringsSep ", " (lib.mapAttrsToList (n: v: "${builtins.toJSON n} = ${builtins.toJSON v}") badTags)}.";
      }
      {
        assertion = agentHonours cfg.taskCleanupWait && agentHonours cfg.containerStopTimeout;
        message = "nixecs.ecs.taskCleanupWait (${cfg.taskCleanupWait}) and nixecs.ecs.containerStopTimeout (${cfg.containerStopTimeout}) must be at least 1s and at most ${toString goDurationMaxSeconds}s: the agent silently replaces other values with its defaults (3h and 30s).";
      }
      {
        assertion = overridden == [ ];
        message = "nixecs.ecs.extraEnvironment: ${lib.concatMapStringsSep "; " (n: "${n} is set by ${typedVariables.${n}}") overridden}; set it there, not in extraEnvironment.";
      }
      {
        assertion = unknownExtra == [ ];
        message = "nixecs.ecs.extraEnvironment: ${lib.concatStringsSep ", " unknownExtra}: not a variable the ECS agent ${agentVars.ref} reads (modules/agent-vars.json, generated from its source).";
      }
      {
        assertion = lib.toLower (cfg.extraEnvironment.ECS_ENABLE_CONTAINER_METADATA or "false") != "true";
        message = "nixecs.ecs.extraEnvironment: ECS_ENABLE_CONTAINER_METADATA does not work with the native agent: it mounts ECS_HOST_DATA_DIR + ECS_DATADIR (agent/containermetadata/write_metadata_unix.go), an empty directory on this host; use the task metadata endpoint v4 (ECS_CONTAINER_METADATA_URI_V4) instead.";
      }
      {
        assertion =
          cfg.taskIamRole
          -> lib.elem (config.boot.kernel.sysctl."net.ipv4.conf.all.route_localnet" or null) [
            1
            true
            "1"
          ];
        message = ''nixecs.ecs.taskIamRole needs boot.kernel.sysctl."net.ipv4.conf.all.route_localnet" = 1; do not override it, or set nixecs.ecs.taskIamRole = false.'';
      }
      {
        assertion = cfg.introspection.allowOffhost || cfg.introspection.interface == null || cfg.introspection.interface != "lo";
        message = "nixecs.ecs.introspection.interface must be the host's external interface (e.g. eth0 or ens5), not lo.";
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
      };
    };

    boot.kernel.sysctl = lib.mkIf cfg.taskIamRole {
      # Lets the DNAT to 127.0.0.1:51679 route packets from task bridges.
      "net.ipv4.conf.all.route_localnet" = 1;
    };

    # A dedicated unit rather than networking.firewall.extraCommands: ECS hosts
    # usually rely on security groups and may disable the NixOS firewall, and
    # the firewall can be nftables-based; these rules must exist either way.
    systemd.services.nixecs-ecs-netfilter = {
      description = "Netfilter rules for the ECS agent (task IAM role endpoint, introspection port)";
      wantedBy = [ "multi-user.target" ];
      before = [ "ecs-agent.service" ];
      after = [
        "network.target"
        "firewall.service"
        "docker.service"
      ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
      };
      script = ''
        ${detectInterface}
        ${lib.concatMapStrings addRule rules}
      '';
      preStop = ''
        ${detectInterface}
        ${lib.concatMapStrings deleteRule rules}
      '';
    };
  };
}
