# The CI host (nixosConfigurations.ci, nixopsConfigurations.default): Buildbot
# checks this flake and builds the AMI on each push. Runs on EC2.
{
  config,
  lib,
  modulesPath,
  ...
}:
{
  imports = [
    "${modulesPath}/virtualisation/amazon-image.nix"
    ../../modules
  ];

  nixpkgs.hostPlatform = lib.mkDefault "x86_64-linux";

  nixecs.ci = {
    enable = true;
    repository = lib.mkDefault "https://github.com/acme/nixecs.git";
    workers = lib.mkDefault 2;
  };

  # VM tests need the `kvm` and `nixos-test` system features, image builds
  # `big-parallel`. nixpkgs provides them: nixos/modules/config/nix.nix
  # (NixOS/nixpkgs, stored version 2d0f4a7ec190, 2025) defines
  # `nix.settings.system-features = defaultSystemFeatures` (nixos-test,
  # benchmark, big-parallel, kvm, plus gccarch-*) at normal priority, so a
  # definition here at mkDefault was dropped, not merged. Nothing to set;
  # the assertion keeps a later override from losing them.
  assertions = [
    {
      assertion = lib.all (f: lib.elem f config.nix.settings.system-features) [
        "nixos-test"
        "kvm"
        "big-parallel"
      ];
      message = "hosts/ci runs the flake's VM tests and builds the AMI: nix.settings.system-features must include nixos-test, kvm and big-parallel (nixpkgs' default has them; a definition that replaces the list must keep them).";
    }
  ];
  nix.gc = {
    automatic = lib.mkDefault true;
    options = lib.mkDefault "--delete-older-than 14d";
  };

  system.stateVersion = "25.11";
}
