# ECS Exec on the native agent: the managed-agent layout the ECS agent checks
# before it advertises the `execute-command` capability, which ecs-init and
# the ECS-optimized AMI provide on Amazon Linux. Read in aws/amazon-ecs-agent
# v1.105.0:
# - agent/app/agent_capability.go appendExecCapabilities and
#   agent/app/agent_capability_unix.go: /managed-agents/execute-command/
#   {bin,config,certs} must exist, certs/ must hold tls-ca-bundle.pem, and
#   bin/ a directory named like a version (^\d+(\.\d+)*$, a real directory:
#   getSubDirectories skips symlinks) holding amazon-ssm-agent,
#   ssm-agent-worker and ssm-session-worker;
# - agent/engine/execcmd/manager_linux.go and manager_init_task_linux.go: the
#   agent reads and writes those files as /managed-agents/execute-command
#   (its view inside ecs-init's container) but bind-mounts them into task
#   containers from the host path /var/lib/ecs/deps/execute-command
#   (HostBinDir/<latest version>, HostExecConfigDir, HostCertFile), and keeps
#   exec logs in /log/exec (its view) = /var/log/ecs/exec (HostLogDir).
# A native agent sees the host's paths, so both names must lead to the same
# directories: /var/lib/ecs/deps/execute-command is the real one, and
# /managed-agents/execute-command and /log/exec are symlinks to it and to
# /var/log/ecs/exec.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.nixecs.ecs.exec;
  ssm = cfg.package;
  deps = "/var/lib/ecs/deps/execute-command";
  binDir = "${deps}/bin/${ssm.version}";
in
{
  imports = [ ./ecs-host.nix ];

  options.nixecs.ecs.exec = {
    enable = lib.mkEnableOption ''
      ECS Exec (`aws ecs execute-command`, `nixecs exec`): the managed SSM
      agent layout the ECS agent needs before it advertises `execute-command`.
      Fleet groups on such hosts say `exec: true`'';

    package = lib.mkOption {
      type = lib.types.package;
      default = pkgs.callPackage ../pkgs/ssm-agent-static/package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage ../pkgs/ssm-agent-static/package.nix { }";
      description = ''
        The SSM agent binaries mounted into task containers: statically linked
        and free of store paths (they run inside arbitrary images). Its
        `version` names the directory under {file}`${deps}/bin`.
      '';
    };
  };

  config = lib.mkIf (config.nixecs.ecs.enable && cfg.enable) {
    assertions = [
      {
        # appendExecCapabilities' version pattern (agent_capability.go).
        assertion = builtins.match "[0-9]+(\\.[0-9]+)*" ssm.version != null;
        message = "nixecs.ecs.exec.package: version ${ssm.version} is not a dotted number; the ECS agent ignores such a directory and would not advertise execute-command.";
      }
    ];

    systemd.tmpfiles.rules = [
      "d ${deps} 0700 root root -"
      "d ${deps}/bin 0755 root root -"
      # A real directory: the agent skips symlinked version directories.
      "d ${binDir} 0755 root root -"
      "L+ ${binDir}/amazon-ssm-agent - - - - ${ssm}/bin/amazon-ssm-agent"
      "L+ ${binDir}/ssm-agent-worker - - - - ${ssm}/bin/ssm-agent-worker"
      "L+ ${binDir}/ssm-session-worker - - - - ${ssm}/bin/ssm-session-worker"
      # The agent writes each task's SSM configuration here.
      "d ${deps}/config 0700 root root -"
      "d ${deps}/certs 0755 root root -"
      # Mounted into containers as the SSM agent's CA bundle (HostCertFile).
      "L+ ${deps}/certs/tls-ca-bundle.pem - - - - ${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt"
      "d /managed-agents 0755 root root -"
      "L+ /managed-agents/execute-command - - - - ${deps}"
      "d /var/log/ecs/exec 0755 root root -"
      "d /log 0755 root root -"
      "L+ /log/exec - - - - /var/log/ecs/exec"
    ];

    # The capability is computed when the agent registers: the layout first.
    systemd.services.ecs-agent = {
      after = [ "systemd-tmpfiles-setup.service" ];
      restartTriggers = [ ssm ];
      # The agent mounts the highest version directory into tasks
      # (execcmd/manager_init_task.go getLatestVersionedHostBinDir): one left
      # by an earlier configuration (a switch keeps /var/lib) could win, with
      # links into a store path that may be gone. Only this one stays.
      preStart = ''
        for dir in ${deps}/bin/*; do
          if [ "$dir" != ${binDir} ]; then rm -rf -- "$dir"; fi
        done
      '';
    };
  };
}
