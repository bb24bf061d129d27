# A plain ECS host, without the optional features: the node a feature's VM
# test compares against (none of the feature's files, units or variables).
{
  imports = [ ../../modules ];
  nixecs.ecs.enable = true;
  virtualisation.memorySize = 1024;
}
