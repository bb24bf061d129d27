# The CI host as a NixOps (nixops-aws) machine: nixopsConfigurations.default.ci.
{ lib, ... }:
{
  imports = [ ./. ];

  deployment.targetEnv = "ec2";
  deployment.ec2 = {
    region = lib.mkDefault "us-east-1";
    # VM tests need KVM: a metal instance, or a Nitro type with nested
    # virtualisation.
    instanceType = lib.mkDefault "c6i.metal";
    ebsInitialRootDiskSize = lib.mkDefault 200;
    associatePublicIpAddress = lib.mkDefault true;
  };
}
