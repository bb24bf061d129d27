# A user's flake (templates/fleet instantiated in `user`) with this checkout as its `nixecs`
# input, evaluated without nixpkgs: nixpkgs' real lib (nixeval's copy) stands in for the
# nixpkgs input, and its `nixosSystem` is nixeval's eval.nix (upstream NixOS options stood
# in) with the NVIDIA modules every NixOS evaluation has (upstream-nvidia.nix). Returns what tools/tests/test_user_flake.py checks of the host and its outputs.
{
  root,
  user,
  nixeval,
  libDir,
  pkgNames ? [ ],
}:
let
  lib = import libDir;
  nixosSystem =
    { modules, ... }:
    import (nixeval + "/eval.nix") {
      inherit lib;
      modules = modules ++ [ ./upstream-nvidia.nix ];
      pkgNames = pkgNames ++ [
        "nvidia-x11"
        "nvidia-container-toolkit"
      ];
      raw = true;
    };
  nixpkgs = {
    lib = lib // {
      inherit nixosSystem;
    };
    outPath = "/nixpkgs";
  };
  nixecsOutputs = (import (root + "/flake.nix")).outputs {
    self = nixecsOutputs // {
      outPath = root;
    };
    inherit nixpkgs;
  };
  userOutputs = (import (user + "/flake.nix")).outputs {
    self = userOutputs // {
      outPath = user;
    };
    nixecs = nixecsOutputs;
  };
  host =
    e:
    let
      c = e.config;
    in
    {
      inherit (c.nixecs.host)
        name
        system
        source
        modules
        nixecsModules
        text
        ;
      nixecsSource = c.nixecs.userdata.source;
      hostPlatform = c.nixpkgs.hostPlatform;
      sysctl = c.boot.kernel.sysctl;
      nixPath = c.nix.nixPath;
      inherit (c) warnings;
      failedAssertions = map (a: a.message) (builtins.filter (a: !a.assertion) c.assertions);
      cluster = c.nixecs.ecs.cluster;
      userdata = c.nixecs.userdata.enable;
      etcHost =
        c.environment.etc ? "nixecs/host.nix"
        && "${c.environment.etc."nixecs/host.nix".source}" == c.nixecs.host.file;
    };
in
{
  inputs = builtins.attrNames (import (user + "/flake.nix")).inputs;
  hosts = builtins.mapAttrs (_: host) userOutputs.nixosConfigurations;
  packages = builtins.mapAttrs (_: ps: builtins.mapAttrs (_: toString) ps) userOutputs.packages;
  inherit (userOutputs) nixecsHosts nixecsHostFeatures;
  # This checkout's own hosts, built by the same functions.
  ours = builtins.mapAttrs (_: host) nixecsOutputs.nixosConfigurations;
  ourPackages = builtins.attrNames nixecsOutputs.packages.x86_64-linux or { };
  ourArmPackages = builtins.mapAttrs (_: toString) (
    builtins.intersectAttrs { ecs-node-ami = null; } nixecsOutputs.packages.aarch64-linux
  );
}
