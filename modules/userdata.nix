# Boot-time EC2 userdata handling with `nixecs apply` instead of the stock
# amazon-init: IMDSv2, three formats (settings, nix, script), a rebuild only
# when the nix userdata changed, and no network needed to evaluate it.
{
  config,
  lib,
  options,
  pkgs,
  utils,
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
      # The package's own file set (pkgs/nixecs/source.nix, what `nix build .#nixecs` builds
      # and tests from) and what the flake and its modules need to evaluate.
      fileset = lib.fileset.unions (
        [ (import ../pkgs/nixecs/source.nix { inherit lib; }).fileset ]
        ++ map lib.fileset.maybeMissing [
          (repoRoot + "/flake.nix")
          (repoRoot + "/flake.lock")
          (repoRoot + "/modules")
          (repoRoot + "/hosts")
          (repoRoot + "/pkgs")
        ]
      );
    }).outPath;

  # A store path string. For a flake input (already a store path named
  # "source" with the same content) this is that very path: nothing is copied.
  defaultNixpkgs = builtins.path {
    path = pkgs.path;
    name = "source";
  };

  # systemd expands `%` specifiers and `$` variables in Exec lines (systemd.service(5),
  # "Command lines"): nixpkgs' utils.escapeSystemdExecArgs (nixos/lib/utils.nix) quotes each
  # argument and doubles both, so an endpoint or command is passed as written.
  applyCommand = utils.escapeSystemdExecArgs (
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

  # Whether ecs-host.nix is imported and enabled: this module also works alone
  # (nixosModules.userdata), where nixecs.ecs is not declared at all.
  ecsEnabled = options ? nixecs.ecs.enable && config.nixecs.ecs.enable;

  # Written after every successful apply of this boot (/run is a tmpfs), never removed by a
  # failed re-apply: the agent then keeps the configuration of the last successful one.
  appliedMarker = "/run/nixecs/userdata-applied";

  # Starts the units that a `nix` userdata switched at boot added to targets still waiting
  # to be reached. switch-to-configuration(-ng) starts only the targets that are active or
  # activating when it runs (pkgs/by-name/sw/switch-to-configuration-ng/src/src/main.rs,
  # nixpkgs 00401fd7: "Cause all active target units to be restarted below"); this unit runs
  # before multi-user.target, whose start job is still waiting, so a unit the switch added
  # with wantedBy = [ "multi-user.target" ] would not start until the next boot. Queuing the
  # start of every target that has a waiting start job makes systemd build a new transaction
  # from the reloaded unit files, which pulls in their new Wants=; the jobs merge with the
  # ones already queued. --no-block: those targets are ordered after this unit, waiting for
  # them here would deadlock. --job-mode=fail: never cancel a conflicting job (a shutdown).
  # Both halves reproduced under systemd 252 by tools/tests/test_systemd_jobs.py.
  startPendingTargets = pkgs.writeShellScript "nixecs-start-pending-targets" ''
    PATH=${
      lib.makeBinPath [
        pkgs.systemd
        pkgs.gawk
      ]
    }
    ${builtins.readFile ./userdata-start-pending-targets.sh}
  '';

  # The agent's gate (see ecs-agent below): fails its start, visibly, until an apply succeeded.
  checkApplied = pkgs.writeShellScript "nixecs-check-userdata-applied" (
    builtins.readFile ./userdata-check-applied.sh
  );
in
{
  imports = [
    ./common.nix
    ./host.nix
  ];

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
        that `nix` userdata (`imports = [ <nixecs-host> ];`, the recorded
        host of `nixecs.host.file`, which imports nixecs' modules from here)
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
      # The host this system was built from (host.nix): what `nix` userdata imports.
      "nixecs-host=${config.nixecs.host.file}"
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
        ExecStartPost = [
          (utils.escapeSystemdExecArgs [ startPendingTargets ])
          (utils.escapeSystemdExecArgs [
            "${pkgs.coreutils}/bin/touch"
            appliedMarker
          ])
        ];
        # A stuck step fails visibly instead of holding the agent back forever. `nixecs
        # apply` bounds itself: 120 s for everything but a nix rebuild, plus the rebuild's
        # own timeout (1800 s by default); 35 min leaves 3 min of margin (docs/host.md).
        TimeoutStartSec = lib.mkDefault "35min";
        # /run/nixecs (ecs.env, settings.json) outlives the unit.
        RuntimeDirectory = "nixecs";
        RuntimeDirectoryMode = "0755";
        RuntimeDirectoryPreserve = "yes";
        # /var/lib/nixecs: content hashes of applied nix and script userdata.
        StateDirectory = "nixecs";
        StateDirectoryMode = "0700";
      };
    };

    # The agent must not register with the baked defaults when the userdata could not be
    # applied, and a failed re-apply must not stop a running agent. Requires= (and
    # Requisite=) would propagate an explicit stop or restart of nixecs-userdata to the
    # agent (systemd.unit(5), Requires=: "this unit will be stopped (or restarted) if one of
    # the other units is explicitly stopped (or restarted)"; Requisite= is "similar to
    # Requires="). Wants= + After= pull it in and order it without that; the gate is an
    # ExecStartPre= that fails while no apply has succeeded on this boot. The agent's
    # Restart=on-failure retries, so it starts once a later apply succeeds.
    systemd.services.ecs-agent = lib.mkIf ecsEnabled {
      after = [ "nixecs-userdata.service" ];
      wants = [ "nixecs-userdata.service" ];
      serviceConfig.ExecStartPre = [
        (utils.escapeSystemdExecArgs [
          checkApplied
          appliedMarker
        ])
      ];
    };
  };
}
