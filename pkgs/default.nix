# Our packages, for the overlay and the flake's `packages` output.
{ pkgs }:
{
  nixecs = pkgs.callPackage ./nixecs/package.nix { };
}
