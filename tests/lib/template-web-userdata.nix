# nixecs-userdata v1 cluster=prod group=web flake=.
# Rendered by nixecs from the fleet file; switched to at boot by nixecs-userdata.service.
# Edit the fleet file, not this text.
{ ... }:
{
  imports = [
    # the host the image was built from (its recorded <nixecs-host>); images from before
    # hosts were recorded: nixecs' ECS node
    (if builtins.any (e: e.prefix == "nixecs-host") builtins.nixPath then <nixecs-host> else <nixecs/hosts/ecs-node>)
    # the group's `nixos:` text from the fleet file
    (
{ ... }:
{
  # Changes here are built at boot by every new instance; bake lasting ones
  # into hosts/web.nix instead.
  boot.kernel.sysctl."net.core.somaxconn" = 4096;
}
    )
  ];
  nixecs.ecs = {
    cluster = "prod";
    attributes = {
      tier = "web";
      "nixecs.group" = "web";
    };
    tags = { };
    spotDraining = false;
    reservedMemoryMiB = 0;
    logLevel = "info";
    imagePullBehavior = "default";
    taskCleanupWait = "3h";
    containerStopTimeout = "30s";
    privileged = false;
    extraEnvironment = { };
  };
  nixecs.secrets = { };
  nixecs.drain = {
    enable = false;
    timeout = null;
  };
}
