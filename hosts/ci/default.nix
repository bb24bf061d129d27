# The CI host (nixosConfigurations.ci, nixopsConfigurations.default): Buildbot
# checks this flake and builds the AMI on each push. Runs on EC2.
{
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

  # VM tests need KVM; image builds need space.
  nix.settings.system-features = lib.mkDefault [
    "nixos-test"
    "benchmark"
    "big-parallel"
    "kvm"
  ];
  nix.gc = {
    automatic = lib.mkDefault true;
    options = lib.mkDefault "--delete-older-than 14d";
  };

  system.stateVersion = "25.11";
}
