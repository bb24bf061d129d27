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
      nixosSystem =
        host:
        lib.nixosSystem {
          modules = [
            host
            { nixpkgs.overlays = [ self.overlays.default ]; }
          ];
        };
    in
    {
      overlays.default = final: _prev: import ./pkgs { pkgs = final; };

      # Attribute sets importing the files (not bare paths, which older
      # `nix flake check` rejects): the module system still deduplicates
      # them by file, so importing `default` and `ecs-host` together is fine.
      nixosModules = lib.mapAttrs (_: file: { imports = [ file ]; }) {
        ecs-host = ./modules/ecs-host.nix;
        userdata = ./modules/userdata.nix;
        secrets = ./modules/secrets.nix;
        drain = ./modules/drain.nix;
        ci = ./modules/ci.nix;
        default = ./modules;
      };

      nixosConfigurations = {
        ecs-node = nixosSystem ./hosts/ecs-node;
        ci = nixosSystem ./hosts/ci;
      };

      packages = eachSystem (
        system:
        let
          ours = ourPackages system;
        in
        ours
        // {
          default = ours.nixecs;
        }
        // lib.optionalAttrs (system == "x86_64-linux") {
          ecs-node-ami = self.nixosConfigurations.ecs-node.config.system.build.images.amazon;
        }
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
          ) self.nixosConfigurations
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
