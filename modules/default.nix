# Every nixecs module (nixosModules.default). Importing this file changes
# nothing until a `nixecs.*.enable` option is set.
{
  imports = [
    ./common.nix
    ./ecs-host.nix
    ./ecs-exec.nix
    ./ecs-gpu.nix
    ./userdata.nix
    ./host.nix
    ./secrets.nix
    ./drain.nix
    ./ci.nix
  ];
}
