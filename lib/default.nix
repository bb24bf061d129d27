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

  # hosts.<name> = { modules; system ? "x86_64-linux"; systems ? [ system ]; ami ? true; }
  # One nixosConfiguration per system: `<name>` for the first, `<name>-<system>` for the
  # others (e.g. `ecs-node-aarch64-linux` for Graviton), each recorded as host `<name>` so
  # `ami: {host: <name>}` finds the image of the group's architecture; one
  # `packages.<system>.<name>-ami` per system.
  mkHosts =
    {
      hosts,
      src ? null,
    }:
    let
      systemsOf = h: h.systems or [ (h.system or "x86_64-linux") ];
      configName = name: h: system: if system == lib.head (systemsOf h) then name else "${name}-${system}";
      perSystem = lib.concatLists (
        lib.mapAttrsToList (
          name: h:
          map (system: {
            inherit name system h;
            configuration = mkHost {
              inherit name src system;
              inherit (h) modules;
            };
          }) (systemsOf h)
        ) hosts
      );
      amis =
        system:
        lib.listToAttrs (
          map (e: lib.nameValuePair "${e.name}-ami" e.configuration.config.system.build.images.amazon) (
            lib.filter (e: (e.h.ami or true) && e.system == system) perSystem
          )
        );
    in
    {
      nixosConfigurations = lib.listToAttrs (
        map (e: lib.nameValuePair (configName e.name e.h e.system) e.configuration) perSystem
      );
      packages = lib.genAttrs systems amis;
      # nixosConfiguration name → its system (a flake checks each host on its own system).
      systemOf = lib.listToAttrs (
        map (e: lib.nameValuePair (configName e.name e.h e.system) e.system) perSystem
      );
      # Plain data (nothing instantiated): `nixecs validate` reads the hosts' names and systems
      # with `nix eval --json FLAKE#nixecsHosts` (a group's `host:` must be one; the
      # architecture of one of its systems must match the group's instance types).
      nixecsHosts = lib.mapAttrs (_: h: {
        system = lib.head (systemsOf h);
        systems = systemsOf h;
        ami = h.ami or true;
      }) hosts;
      # What each host provides that a fleet group declares (`exec: true`, `gpu: true`):
      # `nixecs validate` reads it with `nix eval --json FLAKE#nixecsHostFeatures` when a
      # group declares one. Apart from nixecsHosts, as it evaluates the hosts' options (of
      # the first system's configuration; nothing is built). `nvidiaOpen`: a GPU host with
      # NVIDIA's open kernel modules (ecs-gpu.nix's default), which support no GPU older
      # than Turing: validate warns of such instance types in its groups (W502).
      nixecsHostFeatures = lib.mapAttrs (
        name: h:
        let
          c = (lib.findFirst (e: e.name == name) null perSystem).configuration.config;
          # `or { }`: a host without ecs-host.nix (e.g. only nixosModules.userdata) does
          # not declare nixecs.ecs and provides neither; one such host must not make the
          # whole attribute fail to evaluate (validate would then check no group's host).
          ecs = c.nixecs.ecs or { };
          on = feature: (ecs.enable or false) && (ecs.${feature}.enable or false);
        in
        {
          exec = on "exec";
          gpu = on "gpu";
          nvidiaOpen = on "gpu" && (c.hardware.nvidia.open or null) == true;
        }
      ) hosts;
    };
in
{
  inherit mkHost mkHosts systems;
  # The module mkHost adds to record a host (for a configuration not built by mkHost).
  inherit recordHost;
}
