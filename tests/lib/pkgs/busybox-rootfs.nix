# A container root filesystem with a static busybox and the applets named in
# `applets` (sh, wget, ...), as a tarball for `docker import`. Static, so the
# image needs no closure (nixpkgs pkgs/os-specific/linux/busybox/default.nix:
# `enableStatic`, `useMusl`; the usual way to get a static busybox from nixpkgs).
{
  pkgs,
  name,
  applets,
}:
pkgs.runCommand name { nativeBuildInputs = [ pkgs.gnutar ]; } ''
  mkdir -p root/bin
  cp ${
    pkgs.busybox.override {
      enableStatic = true;
      useMusl = true;
    }
  }/bin/busybox root/bin/busybox
  ${pkgs.lib.concatMapStrings (applet: "ln -s busybox root/bin/${applet}\n") applets}
  tar -C root --owner=0 --group=0 -cf $out .
''
