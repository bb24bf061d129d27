{
  description = "nixecs: NixOS container instances for Amazon ECS, declared, built, tested and booted from one repository";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      eachSystem = lib.genAttrs [
        "x86_64-linux"
        "aarch64-linux"
      ];
      pkgsFor = system: nixpkgs.legacyPackages.${system};
      ourPackages = system: import ./pkgs { pkgs = pkgsFor system; };
      # Our own hosts, built as a user's flake builds its hosts (templates/fleet).
      hosts = self.lib.mkHosts {
        src = self;
        hosts = {
          ecs-node = {
            modules = [ self.nixosModules.ecs-node ];
            # Graviton too: packages.aarch64-linux.ecs-node-ami (UEFI, as AWS requires for arm64).
            systems = [
              "x86_64-linux"
              "aarch64-linux"
            ];
          };
          ci = {
            modules = [ ./hosts/ci ];
            ami = false;
          };
        };
      };
    in
    {
      overlays.default = final: _prev: import ./pkgs { pkgs = final; };

      # Hosts from module files: mkHost, mkHosts (lib/default.nix, docs/nix.md).
      lib = import ./lib { inherit self nixpkgs; };

      # `nix flake init -t <nixecs>#fleet`: a team's own repository of hosts and fleet.
      templates = {
        fleet = {
          path = ./templates/fleet;
          description = "A team's ECS hosts (extending nixecs' ecs-node) and its fleet.yml";
          welcomeText = ''
            # Your ECS hosts

            `hosts/web.nix` is your host, `fleet.yml` runs it. Add the files to git
            (`git add -A`: a flake sees only tracked files), then follow README.md:
            build the image, publish it, validate, deploy, roll.
          '';
        };
        default = self.templates.fleet;
      };

      # Attribute sets importing the files (not bare paths, which older
      # `nix flake check` rejects): the module system still deduplicates
      # them by file, so importing `default` and `ecs-host` together is fine.
      # `_file` names the file: lib.mkHost records it in the image for `nix` userdata.
      nixosModules = lib.mapAttrs (_: file: {
        _file = file;
        imports = [ file ];
      }) {
        # The ECS container instance profile (hosts/ecs-node): what a team's host extends.
        ecs-node = ./hosts/ecs-node;
        ecs-host = ./modules/ecs-host.nix;
        userdata = ./modules/userdata.nix;
        secrets = ./modules/secrets.nix;
        drain = ./modules/drain.nix;
        ci = ./modules/ci.nix;
        default = ./modules;
      };

      inherit (hosts) nixosConfigurations;

      packages = eachSystem (
        system:
        let
          ours = ourPackages system;
        in
        ours
        // {
          default = ours.nixecs;
        }
        // hosts.packages.${system}
      );

      checks = eachSystem (
        system:
        lib.mapAttrs' (name: lib.nameValuePair "package-${name}") (
          removeAttrs self.packages.${system} [ "default" ]
        )
        // lib.optionalAttrs (system == "x86_64-linux") (
          import ./tests { pkgs = pkgsFor system; }
          // lib.mapAttrs' (
            name: host: lib.nameValuePair "host-${name}" host.config.system.build.toplevel
          ) (lib.filterAttrs (name: _: hosts.systemOf.${name} == system) self.nixosConfigurations)
        )
      );

      formatter = eachSystem (system: (pkgsFor system).nixfmt-tree);

      devShells = eachSystem (system: {
        default = import ./pkgs/dev-shell.nix { pkgs = pkgsFor system; };
      });

      nixopsConfigurations.default = {
        inherit nixpkgs;
        network = {
          description = "nixecs CI: Buildbot checking this flake and building the ECS node AMI";
          storage.legacy = { };
        };
        ci = import ./hosts/ci/nixops.nix;
      };
    };
}
