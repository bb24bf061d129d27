# The ECS agent's environment from the nixecs.ecs option values, and the
# checks of those values: builtins only (no nixpkgs lib), so that the Python
# tests evaluate exactly this file with real Nix and compare it with
# tools/src/nixecs/settings.py (tools/tests/test_agent_settings.py).
# Every rule is cited where it is stated; the Python side cites the same.
let
  inherit (builtins)
    attrNames
    concatStringsSep
    filter
    fromJSON
    head
    length
    match
    replaceStrings
    stringLength
    substring
    toJSON
    ;

  upper = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];
  lower = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  toLower = replaceStrings upper lower;
  boolString = b: if b then "true" else "false";
  mapAttrsToList = f: set: map (n: f n set.${n}) (attrNames set);
  filterAttrs =
    pred: set:
    builtins.listToAttrs (
      builtins.concatMap (n: if pred n set.${n} then [ { name = n; value = set.${n}; } ] else [ ]) (
        attrNames set
      )
    );
in
rec {
  # The fleet schema's durations (settings.py DURATION_RE).
  durationPattern = "^[0-9]{1,9}(s|m|h)$";
  durationSeconds =
    d:
    let
      digits = head (match "0*([0-9]+)[smh]" d);
      unit = substring (stringLength d - 1) 1 d;
    in
    fromJSON digits
    * {
      s = 1;
      m = 60;
      h = 3600;
    }
    .${unit};
  # Go's time.Duration is an int64 of nanoseconds (aws/amazon-ecs-agent
  # v1.105.0 agent/config/parse.go parseEnvVariableDuration, time.ParseDuration):
  # longer values fail to parse and the agent falls back to its default.
  goDurationMaxSeconds = 9223372036;
  # Below 1s the agent replaces the task cleanup wait with its default 3h
  # (agent/config/config.go validateAndOverrideBounds,
  # minimumTaskCleanupWaitDuration) and a 0 stop timeout with its default 30s
  # (parse.go parseDockerStopTimeout, then the merge with DefaultConfig).
  agentHonoursDuration = d: durationSeconds d >= 1 && durationSeconds d <= goDurationMaxSeconds;

  # Log drivers the agent knows (v1.105.0 agent/dockerclient/logging_drivers.go
  # LoggingDriverMinimumVersion, plus awsfirelens, which validateAndOverrideBounds
  # in agent/config/config.go accepts too; any other name stops the agent) that
  # the host's Docker (28 in nixos-25.11) has. Not offered: `logentries`, which
  # Docker removed in v25.0 (docker/cli docs/deprecated.md, "logentries logging
  # driver"), and `sumologic`, never built into dockerd (a managed plugin,
  # SumoLogic/sumologic-docker-logging-driver, that this host does not install):
  # advertised, tasks using them would be placed here and fail to start.
  knownLoggingDrivers = [
    "json-file"
    "syslog"
    "journald"
    "gelf"
    "fluentd"
    "awslogs"
    "splunk"
    "none"
    "awsfirelens"
  ];
  # What ecs-init passes the agent on the ECS-optimized AMI (v1.105.0
  # ecs-init/docker/docker.go getContainerConfig, ECS_AVAILABLE_LOGGING_DRIVERS).
  amiLoggingDrivers = [
    "json-file"
    "syslog"
    "awslogs"
    "fluentd"
    "none"
  ];

  # ECS API reference, Attribute
  # (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Attribute.html):
  # names of 1-128 letters, digits, - _ / \ . ; values of 1-128 letters,
  # digits, - _ . @ / \ : and spaces, not starting or ending with a space.
  validAttributeName = n: match "[A-Za-z0-9_./\\-]{1,128}" n != null;
  validAttributeValue = v: match "[A-Za-z0-9_.@/\\: -]{1,128}" v != null && match "( .*|.* )" v == null;
  # ECS API reference, Tag
  # (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Tag.html):
  # at most 50; keys of 1-128, values of 0-256 characters matching
  # ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$; no aws: prefix in any case. Nix regexes
  # have no Unicode classes: ASCII is checked exactly, other characters are
  # left to ECS, and lengths count bytes (the Python side is exact).
  tagMaxCount = 50;
  validTagText = t: match "([A-Za-z0-9 _.:/=+@-]|[^[:cntrl:] -~])*" t != null;
  awsPrefixed = t: toLower (substring 0 4 t) == "aws:";
  validTag =
    k: v:
    stringLength k >= 1
    && stringLength k <= 128
    && stringLength v <= 256
    && validTagText k
    && validTagText v
    && !(awsPrefixed k)
    && !(awsPrefixed v);
  badAttributes = filterAttrs (n: v: !(validAttributeName n && validAttributeValue v));
  badTags = filterAttrs (k: v: !(validTag k v));

  # systemd EnvironmentFile syntax: bare when the value is plain, otherwise
  # double-quoted with the four characters systemd unescapes (" \ ` $) escaped.
  # JSON values must be quoted, or systemd would strip their inner quotes.
  envLine =
    name: value:
    if match "[A-Za-z0-9_./:,@+=%-]*" value != null then
      "${name}=${value}"
    else
      ''${name}="${
        replaceStrings
          [
            "\\"
            "\""
            "`"
            "$"
          ]
          [
            "\\\\"
            "\\\""
            "\\`"
            "\\$"
          ]
          value
      }"'';

  # Same keys as the runtime file /run/nixecs/ecs.env that `nixecs apply`
  # writes (settings.py agent_environment). Like the tool, attributes and tags
  # are only written when there are some.
  settingsEnvironment =
    cfg:
    {
      ECS_CLUSTER = cfg.cluster;
      ECS_ENABLE_SPOT_INSTANCE_DRAINING = boolString cfg.spotDraining;
      ECS_RESERVED_MEMORY = toString cfg.reservedMemoryMiB;
      ECS_LOGLEVEL = cfg.logLevel;
      ECS_IMAGE_PULL_BEHAVIOR = cfg.imagePullBehavior;
      ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION = cfg.taskCleanupWait;
      ECS_CONTAINER_STOP_TIMEOUT = cfg.containerStopTimeout;
      ECS_DISABLE_PRIVILEGED = boolString (!cfg.privileged);
    }
    // (if cfg.attributes != { } then { ECS_INSTANCE_ATTRIBUTES = toJSON cfg.attributes; } else { })
    // (if cfg.tags != { } then { ECS_CONTAINER_INSTANCE_TAGS = toJSON cfg.tags; } else { });

  # What ecs-init passes to the agent container on the ECS-optimized AMI
  # (v1.105.0 ecs-init/docker/docker.go getContainerConfig), translated to an
  # agent that runs natively (host paths instead of the container's /data and
  # /log mounts).
  hostEnvironment = cfg: {
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
    ECS_AVAILABLE_LOGGING_DRIVERS = toJSON cfg.loggingDrivers;
    ECS_ENABLE_TASK_IAM_ROLE = boolString cfg.taskIamRole;
    ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST = boolString cfg.taskIamRole;
    ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS = boolString cfg.introspection.allowOffhost;
    # awslogs authenticates with the task's execution role, as on the
    # ECS-optimized AMI: ecs-init sets it on Amazon Linux (v1.105.0
    # ecs-init/docker/docker_config.go getPlatformSpecificEnvVariables); the
    # agent's own default is false (agent/config/config.go
    # OverrideAWSLogsExecutionRole, parseBooleanDefaultFalseConfig).
    ECS_ENABLE_AWSLOGS_EXECUTIONROLE_OVERRIDE = "true";
  };

  # ecs-init's settings that stay the host's and the fleet's to change
  # (extraEnvironment, ecs.extra: later, so they win). The agent's JSON
  # configuration file: ecs-init points the agent at /etc/ecs/ecs.config.json
  # (v1.105.0 ecs-init/docker/docker.go getContainerConfig,
  # ecs-init/config/common.go AgentJSONConfigFile, /etc/ecs bind-mounted at
  # the same path), where a native agent would read
  # /etc/ecs_container_agent/config.json (agent/config/config.go
  # defaultConfigFileName).
  # The detailed OS family (`ID_VERSION_ID` of os-release, ecs-init/config/
  # os_family.go GetLinuxOSFamily), which the agent registers as the attribute
  # ecs.os-type-detailed (ecs-agent/api/ecs/client/ecs_client.go); unset, the
  # native agent says "LINUX" (agent/config/parse_linux.go GetDetailedOSFamily).
  defaultEnvironment =
    cfg:
    {
      ECS_AGENT_CONFIG_FILE_PATH = "/etc/ecs/ecs.config.json";
    }
    // (if cfg ? osFamilyDetailed then { ECS_DETAILED_OS_FAMILY = cfg.osFamilyDetailed; } else { });

  # Variables an option sets, with the option to use instead; extraEnvironment
  # may not set them (settings.py TYPED_VARIABLES and HOST_VARIABLES).
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
    ECS_DATADIR = "nothing: the host sets it for the native agent";
    ECS_HOST_DATA_DIR = "nothing: the host sets it for the native agent";
    ECS_LOGFILE = "nothing: the host sets it for the native agent";
    ECS_AUDIT_LOGFILE = "nothing: the host sets it for the native agent";
    ECS_UPDATE_DOWNLOAD_DIR = "nothing: the host sets it for the native agent";
    ECS_UPDATES_ENABLED = "nothing: the host sets it for the native agent";
    ECS_ENABLE_AWSLOGS_EXECUTIONROLE_OVERRIDE = "nothing: the host sets it as ecs-init does";
  };

  # The environment variables the agent reads, generated from its source by
  # tools/gen_agent_vars.py (repository, tag and commit recorded in the file).
  agentVars = fromJSON (builtins.readFile ../agent-vars.json);

  # extraEnvironment names an option sets / the agent does not read.
  overriddenExtra = extra: filter (n: typedVariables ? ${n}) (attrNames extra);
  unknownExtra = extra: filter (n: !(builtins.elem n agentVars.variables)) (attrNames extra);
  # extraEnvironment names whose feature this host does not provide (the
  # generated table's `needs`, each with its reason and the supported way).
  neededExtra = extra: filter (n: agentVars.needs ? ${n}) (attrNames extra);
  describeNeeded =
    extra:
    concatStringsSep "; " (
      map (
        n: "${n} needs ${agentVars.needs.${n}.feature}, which this host does not provide: it ${agentVars.needs.${n}.message}"
      ) (neededExtra extra)
    );
  # Credentials (settings.py SECRET_VARIABLES): extraEnvironment is written to
  # the world-readable Nix store; the agent reads them from its JSON
  # configuration file too (v1.105.0 agent/dockerclient/dockerauth/doc.go,
  # agent/config/config.go fileConfig), which nixecs.secrets can provide.
  secretVariables = [ "ECS_ENGINE_AUTH_DATA" ];
  secretExtra = extra: filter (n: builtins.elem n secretVariables) (attrNames extra);
  # The native agent bind-mounts ECS_HOST_DATA_DIR + "/" + ECS_DATADIR +
  # "/metadata/..." into task containers (v1.105.0
  # agent/containermetadata/write_metadata_unix.go createBindsEnv, the path
  # from utils.go getMetadataFilePath): only ecs-init's ECS_DATADIR=/data in
  # the agent's container makes that the real directory. Here it is empty.
  containerMetadataEnabled = extra: toLower (extra.ECS_ENABLE_CONTAINER_METADATA or "false") == "true";

  # Every variable, extraEnvironment under the options (the assertions refuse overlaps).
  # featureEnvironment: what a feature module sets (ecs-gpu.nix); absent when
  # this file is evaluated on its own.
  environment =
    cfg:
    defaultEnvironment cfg
    // cfg.extraEnvironment
    // (cfg.featureEnvironment or { })
    // hostEnvironment cfg
    // settingsEnvironment cfg;
  text = cfg: concatStringsSep "\n" (mapAttrsToList envLine (environment cfg)) + "\n";
  describe = set: concatStringsSep ", " (mapAttrsToList (n: v: "${toJSON n} = ${toJSON v}") set);
  count = set: length (attrNames set);
}
