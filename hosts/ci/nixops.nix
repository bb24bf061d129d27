# The CI host as a NixOps (nixops-aws) machine: nixopsConfigurations.default.ci.
#
# Read in NixOS/nixops-aws nixops_aws/nix/ec2.nix (d173b2f14ec7, 2024-02-29):
# `deployment.ec2.keyPair` has no default, and `deployment.ec2.ami` defaults
# (mkDefault) to a lookup in nixpkgs' nixos/modules/virtualisation/
# amazon-ec2-amis.nix by release and region, a table that ends at 23.05
# (`latest = self."23.05"` in its stored version): no image for this 25.11
# host. Both are the deployer's to give, below; deploying without them stops
# with a message naming the option, before anything is created.
{ config, lib, ... }:
let
  cfg = config.nixecs.ci.ec2;
  required =
    name: what: value:
    if value != null then
      value
    else
      throw "hosts/ci/nixops.nix: set nixecs.ci.ec2.${name} (${what}); nixops-aws has no usable default for it.";
in
{
  imports = [ ./. ];

  options.nixecs.ci.ec2 = {
    keyPair = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      example = "ci-admin";
      description = ''
        Name of the EC2 key pair, in {option}`deployment.ec2.region`, whose
        key NixOps uses to reach the CI instance
        ({option}`deployment.ec2.keyPair`). Required to deploy.
      '';
    };

    ami = lib.mkOption {
      type = lib.types.nullOr (lib.types.strMatching "ami-([0-9a-f]{8}|[0-9a-f]{17})");
      default = null;
      example = "ami-0123456789abcdef0";
      description = ''
        The NixOS AMI the CI instance first boots, in
        {option}`deployment.ec2.region` ({option}`deployment.ec2.ami`): a
        NixOS 25.11 x86_64 image that accepts SSH with the key pair's key.
        NixOps then deploys this configuration onto it. Required to deploy.
      '';
    };
  };

  config = {
    deployment.targetEnv = "ec2";
    deployment.ec2 = {
      region = lib.mkDefault "us-east-1";
      keyPair = required "keyPair" "the EC2 key pair NixOps logs in with" cfg.keyPair;
      ami = required "ami" "a NixOS 25.11 AMI in the deployment's region" cfg.ami;
      # VM tests need KVM: a metal instance, or a Nitro type with nested
      # virtualisation.
      instanceType = lib.mkDefault "c6i.metal";
      ebsInitialRootDiskSize = lib.mkDefault 200;
      associatePublicIpAddress = lib.mkDefault true;
    };
  };
}
