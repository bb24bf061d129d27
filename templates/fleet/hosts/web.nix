# Our web host: nixecs' ECS node plus our own settings. A plain NixOS module (no flake
# arguments): `nix` userdata imports this file again on the instance, from the image.
{ ... }:
{
  # Our one change: send TCP keepalives after 5 minutes idle instead of the kernel's 2 hours,
  # so that connections through a Network Load Balancer (350 s idle timeout) stay open.
  boot.kernel.sysctl."net.ipv4.tcp_keepalive_time" = 300;
}
