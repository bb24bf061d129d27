# The secrets both secrets scenarios declare: one from the settings userdata
# (runtime) and two from NixOS options (baked), with owners and modes.
{
  imports = [ ./node.nix ];

  testing.fakeImds.settings = {
    version = 1;
    cluster = "blue";
    group = "web";
    secrets.api-token = {
      parameter = "/prod/api/token";
      owner = "nobody";
      mode = "0440";
    };
  };

  nixecs.secrets = {
    db-password.parameter = "/prod/db/password";
    tls-key = {
      parameter = "/prod/tls/key";
      owner = "nobody";
      group = "nogroup";
      mode = "0440";
    };
  };
}
