# A fake EC2 instance metadata service (IMDSv2) inside the test VM, on
# loopback: the nixecs IMDS emulator serving the given userdata. The
# nixecs units are pointed at it through nixecs.userdata.imdsEndpoint.
{
  config,
  lib,
  pkgs,
  utils,
  ...
}:
let
  cfg = config.testing.fakeImds;
  python = pkgs.python3.withPackages (ps: [ (ps.toPythonModule config.nixecs.package) ]);
  userdataFile = pkgs.writeText "userdata" cfg.userdata;
  endpoint = "http://127.0.0.1:${toString cfg.port}";
in
{
  options.testing.fakeImds = {
    userdata = lib.mkOption {
      type = lib.types.str;
      description = "The userdata the fake IMDS serves at /latest/user-data.";
    };
    settings = lib.mkOption {
      type = lib.types.nullOr (lib.types.attrsOf lib.types.anything);
      default = null;
      description = "Settings to serve as `#nixecs-settings v1` userdata (sets `userdata`).";
    };
    file = lib.mkOption {
      type = lib.types.str;
      default = "/run/fake-imds/user-data";
      description = "Where the served userdata lives. The emulator reads it when it starts: tests overwrite it and restart `fake-imds.service` to serve new userdata.";
    };
    port = lib.mkOption {
      type = lib.types.port;
      default = 8169;
      description = "Loopback port of the fake IMDS.";
    };
  };

  config = {
    testing.fakeImds.userdata = lib.mkIf (cfg.settings != null) "#nixecs-settings v1\n${builtins.toJSON cfg.settings}\n";

    nixecs.userdata.imdsEndpoint = endpoint;

    systemd.services.fake-imds = {
      description = "Fake EC2 instance metadata service (IMDSv2) for tests";
      # Wanted, not required, by the userdata unit: restarting the fake IMDS
      # (to serve new userdata) must not restart nixecs-userdata.
      wantedBy = [
        "multi-user.target"
        "nixecs-userdata.service"
      ];
      before = [ "nixecs-userdata.service" ];
      preStart = ''
        if [ ! -e ${cfg.file} ]; then
          install -D -m 0600 ${userdataFile} ${cfg.file}
        fi
      '';
      serviceConfig = {
        # As in modules/: systemd expands % and $ in Exec lines.
        ExecStart = utils.escapeSystemdExecArgs [
          "${python}/bin/python3"
          "-m"
          "nixecs.testing.imds"
          "--port"
          cfg.port
          "--userdata"
          cfg.file
        ];
        # Ready once it hands out IMDSv2 tokens.
        ExecStartPost = utils.escapeSystemdExecArgs [
          "${pkgs.curl}/bin/curl"
          "--silent"
          "--fail"
          "--retry"
          "30"
          "--retry-connrefused"
          "--retry-delay"
          "1"
          "-X"
          "PUT"
          "-H"
          "X-aws-ec2-metadata-token-ttl-seconds: 60"
          "${endpoint}/latest/api/token"
        ];
        RuntimeDirectory = "fake-imds";
        RuntimeDirectoryPreserve = "yes";
      };
    };
  };
}
