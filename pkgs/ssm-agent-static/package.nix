# amazon-ssm-agent as ECS Exec needs it: the agent bind-mounts these binaries
# into arbitrary task containers (aws/amazon-ecs-agent v1.105.0
# agent/engine/execcmd/manager_init_task_linux.go, HostBinDir/<version>/...),
# where neither the Nix store nor its loader exists. nixpkgs' package
# (pkgs/by-name/am/amazon-ssm-agent/package.nix) is built for the host instead:
# cgo on, /nix/store paths substituted for uname, hostname, lsb_release and
# util-linux's `script`, and on Linux dmidecode (postPatch), and the main binary wrapped in a shell
# script (postFixup). This override builds them as AWS does: static (cgo off)
# and with the source's own command names, so that they use the container's
# tools. `allowedReferences = [ ]` makes the build fail if any store path is
# left in the output.
{ amazon-ssm-agent }:
amazon-ssm-agent.overrideAttrs (old: {
  pname = "amazon-ssm-agent-static";
  env = (old.env or { }) // {
    CGO_ENABLED = "0";
  };
  # Undo nixpkgs' substitutions, whatever store paths they put in: back to the
  # upstream strings (aws/amazon-ssm-agent agent/platform/platform_unix.go,
  # agent/session/shell/shell_unix.go, and agent/managedInstances/fingerprint/
  # hardwareInfo_unix.go `dmidecodeCommand`, which nixpkgs substitutes on Linux
  # and `amazon-ssm-agent -register` links in). Then no Go source may name the
  # store (tools/tests/test_ssm_agent_static.py runs this on sources as
  # nixpkgs' postPatch leaves them): a substitution added to nixpkgs later fails
  # here, naming its file, before allowedReferences fails with a bare path.
  postPatch = (old.postPatch or "") + ''
    sed -i -E \
      -e 's#"${builtins.storeDir}/[^"]*/bin/uname"#"/usr/bin/uname"#g' \
      -e 's#"${builtins.storeDir}/[^"]*/bin/hostname"#"/bin", "hostname"#g' \
      -e 's#"${builtins.storeDir}/[^"]*/bin/lsb_release"#"lsb_release"#g' \
      agent/platform/platform_unix.go
    sed -i -E -e 's#"${builtins.storeDir}/[^"]*/bin/script"#"script"#g' \
      agent/session/shell/shell_unix.go
    sed -i -E -e 's#"${builtins.storeDir}/[^"]*/bin/dmidecode"#"/usr/sbin/dmidecode"#g' \
      agent/managedInstances/fingerprint/hardwareInfo_unix.go
    if grep -rn --include='*.go' '${builtins.storeDir}/' .; then
      echo "amazon-ssm-agent-static: a store path is left in the sources above" >&2
      exit 1
    fi
  '';
  # No wrapper: the binary itself is what the container runs.
  postFixup = "";
  allowedReferences = [ ];
  # The VM test checks the result is static (tests/ecs-exec.nix).
})
