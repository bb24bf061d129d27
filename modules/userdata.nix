# Boot-time EC2 userdata handling with `nixecs apply` instead of the stock
# amazon-init: IMDSv2, three formats (settings, nix, script), a rebuild only
# when the nix userdata changed, and no network needed to evaluate it.
{
  config,
  lib,
  options,
  pkgs,
  ...
}:
let
  cfg = config.nixecs.userdata;

  repoRoot = ../.;

  # What `<nixecs>` needs on the host: the flake files, modules, hosts and the
  # package sources (pkgs/nixecs/package.nix builds tools/).
  defaultSource =
    (lib.fileset.toSource {
      root = repoRoot;
      fileset = lib.fileset.unions (
        map lib.fileset.maybeMissing [
          (repoRoot + "/flake.nix")
          (repoRoot + "/flake.lock")
          (repoRoot + "/modules")
          (repoRoot + "/hosts")
          (repoRoot + "/pkgs")
          (repoRoot + "/tools/pyproject.toml")
          (repoRoot + "/tools/README.md")
          (repoRoot + "/tools/src")
          (repoRoot + "/tools/tests")
          (repoRoot + "/examples")
        ]
      );
    }).outPath;

  # A store path string. For a flake input (already a store path named
  # "source" with the same content) this is that very path: nothing is copied.
  defaultNixpkgs = builtins.path {
    path = pkgs.path;
    name = "source";
  };

  applyCommand = lib.escapeShellArgs (
    [
      (lib.getExe config.nixecs.package)
      "apply"
      "--imds"
      cfg.imdsEndpoint
    ]
    ++ lib.optionals (cfg.rebuildCommand != null) [
      "--rebuild-command"
      cfg.rebuildCommand
    ]
  );
in
{
  imports = [ ./common.nix ];

  options.nixecs.userdata = {
    enable = lib.mkEnableOption ''
      `nixecs-userdata.service`, which applies the instance's EC2 userdata at
      boot with `nixecs apply` before the ECS agent starts. It replaces the
      stock amazon-init service'';

    imdsEndpoint = lib.mkOption {
      # What the tool's IMDS client accepts: plain HTTP to a host and port, no path.
      type = lib.types.strMatching "^http://[^/@[:space:]]+/?$";
      default = "http://169.254.169.254";
      example = "http://127.0.0.1:8169";
      description = "Base URL (`http://HOST[:PORT]`, no path) of the EC2 instance metadata service (IMDSv2) that `nixecs apply`, `nixecs secrets fetch` and `nixecs drain` ask.";
    };

    rebuildCommand = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      example = "nixos-rebuild boot";
      description = ''
        Command `nixecs apply` runs after it wrote a changed `nix` userdata
        to {file}`/etc/nixos/configuration.nix` (`--rebuild-command`).
        `null` keeps the tool's default, `nixos-rebuild switch`.
      '';
    };

    source = lib.mkOption {
      type = lib.types.pathInStore;
      default = defaultSource;
      defaultText = lib.literalMD "this repository's flake files, `modules/`, `hosts/`, `pkgs/` and `tools/`, copied to the store";
      description = ''
        The nixecs sources that `<nixecs>` points to in {env}`NIX_PATH`, so
        that `nix` userdata (`imports = [ <nixecs/hosts/ecs-node> ];`)
        evaluates on the instance without the network. Kept in the system
        closure.
      '';
    };

    nixpkgs = lib.mkOption {
      type = lib.types.pathInStore;
      default = defaultNixpkgs;
      defaultText = lib.literalExpression ''builtins.path { path = pkgs.path; name = "source"; }'';
      description = ''
        The nixpkgs sources that `<nixpkgs>` points to in {env}`NIX_PATH` on
        the instance: the nixpkgs this system was built from. Kept in the
        system closure.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    # nixecs apply does amazon-init's job, once per userdata content. The
    # option exists only where amazon-image.nix (amazon-init.nix) is imported.
    virtualisation = lib.optionalAttrs (options ? virtualisation.amazon-init) {
      amazon-init.enable = false;
    };

    nix.nixPath = [
      "nixpkgs=${cfg.nixpkgs}"
      "nixecs=${cfg.source}"
      "nixos-config=/etc/nixos/configuration.nix"
    ];
    # Also in nix.conf: with nix.channel.enable = false NixOS sets nix-path
    # to "" there, and nothing may depend on which of the two Nix prefers.
    nix.settings.nix-path = config.nix.nixPath;

    system.extraDependencies = [
      cfg.nixpkgs
      cfg.source
    ];

    systemd.services.nixecs-userdata = {
      description = "Apply EC2 userdata (nixecs apply)";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      before = [
        "ecs-agent.service"
        "nixecs-secrets.service"
        "nixecs-drain.service"
      ];
      path = [
        config.nix.package
        config.system.build.nixos-rebuild
        pkgs.coreutils
        pkgs.systemd
      ];
      environment = {
        HOME = "/root";
        NIX_PATH = lib.concatStringsSep ":" config.nix.nixPath;
      };
      # A switch started by this very unit must neither restart nor stop it.
      restartIfChanged = false;
      unitConfig.X-StopOnRemoval = false;
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        ExecStart = applyCommand;
        # /run/nixecs (ecs.env, settings.json) outlives the unit.
        RuntimeDirectory = "nixecs";
        RuntimeDirectoryMode = "0755";
        RuntimeDirectoryPreserve = "yes";
        # /var/lib/nixecs: content hashes of applied nix and script userdata.
        StateDirectory = "nixecs";
        StateDirectoryMode = "0700";
      };
    };

    # The agent must not register with the baked defaults when the userdata
    # could not be applied: it starts only after a successful apply.
    systemd.services.ecs-agent = lib.mkIf config.nixecs.ecs.enable {
      after = [ "nixecs-userdata.service" ];
      requires = [ "nixecs-userdata.service" ];
    };
  };
}
