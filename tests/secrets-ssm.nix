# Secrets end to end against a fake SSM Parameter Store: moto's server on
# loopback, seeded with the parameters; nixecs-secrets.service reaches it
# through botocore's standard AWS_ENDPOINT_URL_SSM. The declared secrets and
# the one from settings userdata land in /run/nixecs/secrets with their owners and
# modes before the ECS agent starts.
{ pkgs, ... }:
let
  motoEnv = pkgs.python3.withPackages (
    ps:
    [ ps.moto ]
    ++ (ps.moto.optional-dependencies.server or ps.moto.optional-dependencies.all or [
      ps.flask
      ps.flask-cors
    ])
  );
  awsEnvironment = {
    AWS_ENDPOINT_URL_SSM = "http://127.0.0.1:5000";
    AWS_ACCESS_KEY_ID = "testing";
    AWS_SECRET_ACCESS_KEY = "testing";
    AWS_DEFAULT_REGION = "us-east-1";
    AWS_REGION = "us-east-1";
  };
  seed = pkgs.writeText "seed-ssm.py" ''
    import boto3

    ssm = boto3.client("ssm", endpoint_url="http://127.0.0.1:5000")
    ssm.put_parameter(Name="/prod/db/password", Value="s3cr3t", Type="SecureString")
    ssm.put_parameter(Name="/prod/tls/key", Value="-----BEGIN KEY-----", Type="SecureString")
    ssm.put_parameter(Name="/prod/api/token", Value="t0ken", Type="SecureString")
  '';
in
{
  name = "nixecs-secrets-ssm";

  nodes.machine =
    { ... }:
    {
      imports = [ ./lib/secrets-machine.nix ];

      systemd.services.fake-ssm = {
        description = "Fake SSM Parameter Store (moto server) for tests";
        wantedBy = [ "multi-user.target" ];
        before = [ "nixecs-secrets.service" ];
        environment = awsEnvironment;
        serviceConfig = {
          ExecStart = "${motoEnv}/bin/moto_server -H 127.0.0.1 -p 5000";
          ExecStartPost = [
            "${pkgs.curl}/bin/curl --silent --fail --retry 60 --retry-connrefused --retry-delay 1 -o /dev/null http://127.0.0.1:5000/moto-api/"
            "${motoEnv}/bin/python3 ${seed}"
          ];
        };
      };
      systemd.services.nixecs-secrets = {
        after = [ "fake-ssm.service" ];
        wants = [ "fake-ssm.service" ];
        environment = awsEnvironment;
      };

      virtualisation.memorySize = 1536;
    };

  testScript = ''
    machine.wait_for_unit("nixecs-secrets.service")

    with subtest("declared secrets with their owners and modes"):
        assert machine.succeed("cat /run/nixecs/secrets/db-password") == "s3cr3t"
        assert machine.succeed("stat -c '%U %G %a' /run/nixecs/secrets/db-password").strip() == "root root 400"
        assert machine.succeed("cat /run/nixecs/secrets/tls-key") == "-----BEGIN KEY-----"
        assert machine.succeed("stat -c '%U %G %a' /run/nixecs/secrets/tls-key").strip() == "nobody nogroup 440"

    with subtest("a secret from settings userdata"):
        assert machine.succeed("cat /run/nixecs/secrets/api-token") == "t0ken"
        assert machine.succeed("stat -c '%U %a' /run/nixecs/secrets/api-token").strip() == "nobody 440"

    with subtest("fetched before the agent starts"):
        before = machine.succeed("systemctl show -p Before --value nixecs-secrets.service").split()
        assert "ecs-agent.service" in before, before
  '';
}
