# Secrets from SSM Parameter Store, fetched at boot into /run/nixecs/secrets/<name>
# with the instance role's credentials (no other credentials on the host).
{
  config,
  lib,
  pkgs,
  utils,
  ...
}:
let
  cfg = config.nixecs.secrets;

  # Not /run/secrets: that is sops-nix's default (Mic92/sops-nix modules/sops/default.nix,
  # 56b24064, 2026: `path` defaults to "/run/secrets/${name}"). agenix uses /run/agenix
  # (ryantm/agenix modules/age.nix, b027ee29: secretsDir). The tool's default is the same
  # constant (tools/src/nixecs/host/secrets.py SECRETS_DIR); they must agree, since the
  # tool checks each listed path against it.
  directory = "/run/nixecs/secrets";

  # The unit writes into this directory (RuntimeDirectory= is relative to /run).
  runtimeDirectory = lib.removePrefix "/run/" directory;

  # Whether the service (and its list) exist: declared secrets, or settings userdata that
  # can declare more.
  enabled = cfg != { } || config.nixecs.userdata.enable or false;

  # A user or group name (POSIX portable) or a numeric id.
  account = lib.types.strMatching "^([a-z_][a-z0-9_-]{0,31}[$]?|[0-9]{1,10})$";

  secretType = lib.types.submodule (
    { name, ... }:
    {
      options = {
        # The same rules as the tool's settings schema (nixecs.settings).
        parameter = lib.mkOption {
          type = lib.types.strMatching "^(/[A-Za-z0-9_.-]+){1,15}$";
          example = "/prod/db/password";
          description = "Name of the SSM parameter, a SecureString (`nixecs secrets fetch` refuses any other type), whose value becomes {file}`${directory}/${name}`.";
        };
        path = lib.mkOption {
          type = lib.types.str;
          default = "${directory}/${name}";
          readOnly = true;
          description = "Where the secret is written at boot (read-only): reference it as `config.nixecs.secrets.<name>.path`.";
        };
        owner = lib.mkOption {
          type = account;
          default = "root";
          description = "User that owns the secret file.";
        };
        group = lib.mkOption {
          type = account;
          default = "root";
          description = "Group of the secret file.";
        };
        mode = lib.mkOption {
          type = lib.types.strMatching "^0?[0-7]{3}$";
          default = "0400";
          description = "Permissions of the secret file, in octal.";
        };
      };
    }
  );

  # The list `nixecs secrets fetch --list` reads.
  secretsList = lib.mapAttrsToList (name: s: {
    inherit name;
    inherit (s)
      parameter
      owner
      group
      mode
      ;
    inherit (s) path;
  }) cfg;

  secretsFile = pkgs.writeText "nixecs-secrets.json" (builtins.toJSON secretsList);
in
{
  imports = [ ./common.nix ];

  options.nixecs.secrets = lib.mkOption {
    type = lib.types.attrsOf secretType;
    default = { };
    example = lib.literalExpression ''
      {
        db-password = {
          parameter = "/prod/db/password";
          owner = "root";
          mode = "0400";
        };
      }
    '';
    description = ''
      Secrets that `nixecs-secrets.service` fetches from SSM Parameter Store
      at boot (decrypted with the instance role) into
      {file}`${directory}/<name>` (`config.nixecs.secrets.<name>.path`; not
      {file}`/run/secrets`, which sops-nix uses). Settings userdata may add more; the
      service reads {file}`/run/nixecs/settings.json` too. Units that read a
      secret should be ordered `after = [ "nixecs-secrets.service" ]`.
    '';
  };

  config = {
    assertions = lib.mapAttrsToList (name: _: {
      assertion = builtins.match "[A-Za-z0-9][A-Za-z0-9._-]{0,127}" name != null;
      message = "nixecs.secrets.\"${name}\": the name becomes the file ${directory}/<name>; use 1-128 letters, digits, '.', '_' and '-', starting with a letter or digit.";
    }) cfg;

    # Only where the service runs: a host that enables nothing gets nothing.
    environment.etc."nixecs/secrets.json" = lib.mkIf enabled { source = secretsFile; };

    # Always present on hosts with userdata, since settings userdata can
    # declare secrets the image does not know about.
    systemd.services.nixecs-secrets = lib.mkIf enabled {
      description = "Fetch secrets from SSM Parameter Store into ${directory}";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [
        "network-online.target"
        "nixecs-userdata.service"
      ];
      before = [
        "ecs-agent.service"
        "nixecs-drain.service"
      ];
      restartTriggers = [ secretsFile ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        # --imds: the region falls back to IMDS, at the same endpoint as the other units.
        # utils.escapeSystemdExecArgs: see userdata.nix.
        ExecStart = utils.escapeSystemdExecArgs [
          (lib.getExe config.nixecs.package)
          "secrets"
          "fetch"
          "--list"
          "/etc/nixecs/secrets.json"
          "--imds"
          (config.nixecs.userdata.imdsEndpoint or "http://169.254.169.254")
        ];
        # `nixecs secrets fetch` ends within 120 s (its own deadline); 3 min lets it
        # fail with its message first (docs/host.md).
        TimeoutStartSec = lib.mkDefault "3min";
        RuntimeDirectory = runtimeDirectory;
        RuntimeDirectoryMode = "0751";
        RuntimeDirectoryPreserve = "yes";
        UMask = "0077";
      };
    };
  };
}
