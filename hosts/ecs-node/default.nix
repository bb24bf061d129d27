# The ECS container instance profile (nixosModules.ecs-node), which a team's host
# extends, and this repository's own ecs-node host (nixosConfigurations.ecs-node,
# packages.x86_64-linux.ecs-node-ami). A plain module, importable without the
# flake: the recorded host (modules/host.nix) that `nix` userdata imports names it.
{
  lib,
  modulesPath,
  options,
  ...
}:
{
  imports = [
    "${modulesPath}/virtualisation/amazon-image.nix"
    ../../modules
  ];

  nixpkgs.hostPlatform = lib.mkDefault "x86_64-linux";

  nixecs.ecs.enable = true;
  nixecs.userdata.enable = lib.mkDefault true;

  # amazon-image.nix already enables the SSM agent (Session Manager through
  # the instance role) and sshd with key-only root login from the EC2 key
  # pair; a host without SSH sets services.openssh.enable = lib.mkForce false.

  # The image (system.build.images.amazon). These options exist only in the
  # image variant, whose builder modules declare them; the base system
  # (and `nix` userdata rebuilding it on an instance) skips them.
  # Priority 900: above the builder's own defaults, below a plain assignment.
  virtualisation = lib.optionalAttrs (options ? virtualisation.diskSize) {
    # Grown to the EBS volume's size at first boot (amazon-image.nix).
    diskSize = lib.mkOverride 900 (8 * 1024);
  };
  # A raw disk, written into an EBS snapshot block by block by `nixecs ami publish` (EBS
  # direct APIs: no S3, no VM Import). nixos/maintainers/scripts/ec2/amazon-image.nix declares
  # `amazonImage.format` as enum [ "raw" "qcow2" "vpc" ] (default "vpc", a VHD) and names the
  # file by it (image.extension = cfg.format); nixos/modules/image/images.nix adds each
  # `image.modules.<name>` (a deferred module) to that image's configuration only.
  image = {
    modules.amazon = {
      amazonImage.format = lib.mkOverride 900 "raw";
    };
  }
  // lib.optionalAttrs (options ? image.baseName) {
    baseName = lib.mkOverride 900 "nixecs-ecs-node";
  };

  # Tasks' logs go to CloudWatch (awslogs); keep the journal bounded. extraConfig is of
  # type lines (nixos/modules/system/boot/systemd/journald.nix, nixpkgs 0145c6da, 2025;
  # no structured SystemMaxUse option there): a mkDefault would be dropped as soon as any
  # other module set extraConfig at normal priority. Normal priority keeps it; mkBefore
  # puts it first. To change the limit, drop in /etc/systemd/journald.conf.d/*.conf:
  # drop-ins override the main file (journald.conf(5), systemd 252).
  services.journald.extraConfig = lib.mkBefore ''
    SystemMaxUse=512M
  '';

  # Instances are replaced, not upgraded: no channel, no docs in the image.
  nix.channel.enable = lib.mkDefault false;
  documentation.enable = lib.mkDefault false;

  system.stateVersion = "25.11";
}
