# The example application as a layered OCI image (docker-archive tarball),
# for `nixecs image push` and ECS.
#
# nixpkgs' dockerTools.buildLayeredImage (pkgs/build-support/docker/default.nix;
# arguments documented in doc/build-helpers/images/dockertools.section.md,
# nixos-25.11): `name`, `tag` (null would use the output hash), `config` (the
# OCI image config: Cmd, User, Env, ExposedPorts), `maxLayers` (one layer per
# store path, most popular first, up to this many). No `contents`: nothing is
# linked into the image's root, so there is no /bin/sh and no shell on PATH —
# the image holds only the Python interpreter's and the application's closure.
# `created` keeps its default (1970-01-01T00:00:01Z), so the image is
# reproducible and its digest changes only when its content does.
{
  dockerTools,
  python3,
  bananas,
}:
dockerTools.buildLayeredImage {
  name = "bananas";
  tag = bananas.version;
  # Fewer layers than the default 100: ECR and Docker pull them in parallel,
  # and a closure this small needs no more.
  maxLayers = 40;
  config = {
    # The interpreter directly (not bin/bananas, a wrapper): the package has no
    # dependencies, so its site-packages on PYTHONPATH is all it needs.
    Cmd = [
      python3.interpreter
      "-m"
      "bananas"
    ];
    Env = [
      "PYTHONPATH=${bananas}/${python3.sitePackages}"
      "PYTHONDONTWRITEBYTECODE=1"
      "PYTHONUNBUFFERED=1"
      "BANANAS_PORT=8080"
    ];
    ExposedPorts."8080/tcp" = { };
    # A numeric user: no /etc/passwd is needed for it, and the container never
    # runs as root (OCI image spec, config.User "uid:gid"). 65534 is nobody.
    User = "65534:65534";
  };
}
