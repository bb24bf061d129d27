# The flake's `lib`: hosts from module files, as a user's flake declares them
# (templates/fleet) and as this flake declares its own ecs-node and ci.
#
#   nixecs.lib.mkHost { name = "web"; modules = [ ./hosts/web.nix ]; system = "x86_64-linux"; src = self; }
#     → lib.nixosSystem's result (a nixosConfiguration)
#   nixecs.lib.mkHosts { src = self; hosts.web.modules = [ nixecs.nixosModules.ecs-node ./hosts/web.nix ]; }
#     → { nixosConfigurations.<host>; packages.<system>.<host>-ami; nixecsHosts.<host> = { system; ami; }; }
#
# Each host's module files are recorded in the image (record.nix, modules/host.nix), so
# that `nix` userdata on its instances extends that host.
{ self, nixpkgs }:
let
  inherit (nixpkgs) lib;

  systems = [
    "x86_64-linux"
    "aarch64-linux"
  ];

  recordHost = import ./record.nix { inherit lib; };

  mkHost =
    {
      modules,
      name ? null,
      system ? "x86_64-linux",
      src ? null,
    }:
    lib.nixosSystem {
      modules = modules ++ [
        (
          { lib, options, ... }:
          {
            # The image file is named after the host (only the image variant declares it).
            image = lib.optionalAttrs (name != null && options ? image.baseName) {
              baseName = lib.mkOverride 899 "nixecs-${name}";
            };
          }
        )
        {
          nixpkgs.hostPlatform = system;
          nixpkgs.overlays = [ self.overlays.default ];
        }
        (recordHost {
          inherit
            name
            system
            src
            modules
            ;
          overlay = true;
        })
      ];
    };

  # hosts.<name> = { modules; system ? "x86_64-linux"; ami ? true; }
  mkHosts =
    {
      hosts,
      src ? null,
    }:
    let
      configurations = lib.mapAttrs (
        name: h:
        mkHost {
          inherit name src;
          inherit (h) modules;
          system = h.system or "x86_64-linux";
        }
      ) hosts;
      amis =
        system:
        lib.mapAttrs' (name: _: lib.nameValuePair "${name}-ami" configurations.${name}.config.system.build.images.amazon) (
          lib.filterAttrs (_: h: (h.ami or true) && (h.system or "x86_64-linux") == system) hosts
        );
    in
    {
      nixosConfigurations = configurations;
      packages = lib.genAttrs systems amis;
      # Plain data (nothing instantiated): `nixecs validate` reads the hosts' names and systems
      # with `nix eval --json FLAKE#nixecsHosts` (a group's `host:` must be one; its system's
      # architecture must match the group's instance types).
      nixecsHosts = lib.mapAttrs (_: h: {
        system = h.system or "x86_64-linux";
        ami = h.ami or true;
      }) hosts;
    };
in
{
  inherit mkHost mkHosts systems;
  # The module mkHost adds to record a host (for a configuration not built by mkHost).
  inherit recordHost;
}
