{
  description = "Our ECS hosts and fleet, on nixecs";

  # Pin nixecs (and, through it, nixpkgs) in flake.lock: `nix flake update` moves them.
  inputs.nixecs.url = "github:acme/nixecs";

  outputs =
    { self, nixecs }:
    # nixosConfigurations.<host> and packages.<system>.<host>-ami (nixecs' lib/default.nix).
    # Each host is built from files of this flake (`src = self`): the image records them,
    # and `userdata: nix` on its instances extends this very host.
    nixecs.lib.mkHosts {
      src = self;
      hosts = {
        web = {
          modules = [
            nixecs.nixosModules.ecs-node # the ECS container instance profile
            ./hosts/web.nix
          ];
          system = "x86_64-linux"; # or "aarch64-linux" for Graviton instance types
        };
      };
    };
}
