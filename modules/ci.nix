# A CI host for this repository: upstream Buildbot (master and a local worker)
# polls the repository and, on each push, runs `nix flake check -L` and builds
# the ECS node image.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.nixecs.ci;

  # A JSON string literal is a valid Python string literal.
  py = builtins.toJSON;

  workerName = "nixecs-worker";
  builderName = "nixecs";
  passwordFile = "/var/lib/nixecs-ci/worker-password";

  nixCommand = args: "steps.ShellCommand(${
    lib.concatStringsSep ", " [
      "name=${py args.name}"
      "command=${py args.command}"
      "haltOnFailure=True"
      "timeout=${toString cfg.stepTimeout}"
    ]
  })";
in
{
  options.nixecs.ci = {
    enable = lib.mkEnableOption "a Buildbot CI server that checks this flake and builds the ECS node image on each push";

    repository = lib.mkOption {
      type = lib.types.str;
      example = "https://github.com/acme/infra.git";
      description = "Git URL of the repository to build; the CI host polls it, so it must be readable without credentials or through the worker's git configuration.";
    };

    branch = lib.mkOption {
      type = lib.types.str;
      default = "main";
      description = "Branch whose pushes are built.";
    };

    pollInterval = lib.mkOption {
      type = lib.types.ints.positive;
      default = 60;
      description = "Seconds between polls of the repository.";
    };

    workers = lib.mkOption {
      type = lib.types.ints.positive;
      default = 1;
      description = "How many builds the local Buildbot worker runs at once (`max_builds`).";
    };

    port = lib.mkOption {
      type = lib.types.port;
      default = 8010;
      description = "TCP port of the Buildbot web interface.";
    };

    url = lib.mkOption {
      type = lib.types.str;
      default = "http://localhost:${toString cfg.port}/";
      defaultText = lib.literalExpression ''"http://localhost:''${toString config.nixecs.ci.port}/"'';
      description = "The URL users reach the Buildbot web interface at (`buildbotURL`).";
    };

    openFirewall = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Whether to open {option}`nixecs.ci.port` in the firewall.";
    };

    stepTimeout = lib.mkOption {
      type = lib.types.ints.positive;
      default = 7200;
      description = "Seconds a build step may run without output before Buildbot kills it.";
    };

    attributes = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ "ecs-node-ami" ];
      description = "Flake package attributes built after `nix flake check` passes.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.repository != "";
        message = "nixecs.ci.repository is empty: set it to the Git URL of the repository to build.";
      }
    ];

    nix.settings.experimental-features = [
      "nix-command"
      "flakes"
    ];

    users.groups.nixecs-ci = { };

    # The worker password never enters the world-readable store.
    systemd.services.nixecs-ci-password = {
      description = "Generate the Buildbot worker password";
      wantedBy = [ "multi-user.target" ];
      before = [
        "buildbot-master.service"
        "buildbot-worker.service"
      ];
      requiredBy = [
        "buildbot-master.service"
        "buildbot-worker.service"
      ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        StateDirectory = "nixecs-ci";
        StateDirectoryMode = "0750";
        Group = "nixecs-ci";
        UMask = "0027";
      };
      script = ''
        if [ ! -s ${passwordFile} ]; then
          ${pkgs.coreutils}/bin/head -c 32 /dev/urandom | ${pkgs.coreutils}/bin/base64 -w0 > ${passwordFile}.tmp
          ${pkgs.coreutils}/bin/mv ${passwordFile}.tmp ${passwordFile}
        fi
      '';
    };

    services.buildbot-master = {
      enable = true;
      title = lib.mkDefault "nixecs";
      titleUrl = lib.mkDefault cfg.repository;
      buildbotUrl = cfg.url;
      port = cfg.port;
      # Workers are local: the PB port listens on loopback only.
      pbPort = "'tcp:9989:interface=127.0.0.1'";
      extraGroups = [ "nixecs-ci" ];
      packages = [ pkgs.git ];
      workers = [
        "worker.Worker(${py workerName}, open(${py passwordFile}).read().strip(), max_builds=${toString cfg.workers})"
      ];
      changeSource = [
        "changes.GitPoller(${py cfg.repository}, workdir='gitpoller-workdir', branches=[${py cfg.branch}], pollInterval=${toString cfg.pollInterval})"
      ];
      schedulers = [
        "schedulers.SingleBranchScheduler(name='push', change_filter=util.ChangeFilter(branch=${py cfg.branch}), treeStableTimer=None, builderNames=[${py builderName}])"
        "schedulers.ForceScheduler(name='force', builderNames=[${py builderName}])"
      ];
      builders = [
        "util.BuilderConfig(name=${py builderName}, workernames=[${py workerName}], factory=factory)"
      ];
      factorySteps = [
        "steps.Git(repourl=${py cfg.repository}, branch=${py cfg.branch}, mode='full', method='clobber')"
        (nixCommand {
          name = "nix flake check";
          command = [
            "nix"
            "flake"
            "check"
            "-L"
          ];
        })
      ]
      ++ map (
        attr:
        nixCommand {
          name = "nix build .#${attr}";
          command = [
            "nix"
            "build"
            "-L"
            "--out-link"
            "result-${attr}"
            ".#${attr}"
          ];
        }
      ) cfg.attributes;
    };

    services.buildbot-worker = {
      enable = true;
      workerUser = workerName;
      workerPassFile = passwordFile;
      masterUrl = "localhost:9989";
      extraGroups = [ "nixecs-ci" ];
      packages = [
        pkgs.git
        config.nix.package
      ];
    };

    networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall [ cfg.port ];
  };
}
