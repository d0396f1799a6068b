# The nixos-generate command, built from the workspace with nixpkgs' rustPlatform from
# Cargo.lock, and wrapped so its runtime tools are found: QEMU and (on Linux) OVMF and
# vhost-device-vsock where nixpkgs packages it come first on PATH, and e2fsprogs' debugfs and
# zstd (the linode and sd-x86_64 checks read the kernel out of the image's ext4 file system, an
# SD image is zstd-compressed); nix is appended, so a user's own nix (matching their daemon) wins.
# The aarch64 firmware: AAVMF comes with QEMU (its firmware descriptors, which the harness reads);
# U-Boot for QEMU's `virt` board (the sd-aarch64 checks) is nixpkgs' ubootQemuAarch64, built
# natively on aarch64 and cross-compiled elsewhere (firmware runs in the guest, so it is built
# for aarch64 whatever the host); `withUBoot = false` leaves it out (then set NIXGEN_UBOOT).
# `runTests = true` gives the same build running the workspace's tests (the flake's checks).
{
  lib,
  stdenv,
  rustPlatform,
  makeWrapper,
  nix,
  qemu,
  e2fsprogs,
  zstd,
  OVMF ? null,
  vhost-device-vsock ? null,
  pkgsCross ? null,
  ubootQemuAarch64 ? null,
  withUBoot ? stdenv.hostPlatform.isLinux,
  src,
  version,
  runTests ? false,
  # nixpkgs' source, for the module-level Nix tests (formats/tests/nix/check-modules.nix); only
  # the tests' derivation refers to it (where nixpkgs is not in the store yet, `${path}` copies
  # all of it there).
  path ? null,
}:
let
  front = [
    qemu
    e2fsprogs
    zstd
  ]
  ++ lib.optional (stdenv.hostPlatform.isLinux && vhost-device-vsock != null) vhost-device-vsock;
  ovmfFlag = lib.optionalString (
    stdenv.hostPlatform.isLinux && OVMF != null
  ) "--set-default NIXGEN_OVMF_CODE ${OVMF.firmware}";
  uboot =
    if !withUBoot then
      null
    else if stdenv.hostPlatform.isAarch64 then
      ubootQemuAarch64
    else if pkgsCross != null then
      pkgsCross.aarch64-multiplatform.ubootQemuAarch64
    else
      null;
  ubootFlag = lib.optionalString (
    uboot != null
  ) "--set-default NIXGEN_UBOOT ${uboot}/u-boot.bin";
in
rustPlatform.buildRustPackage {
  pname = if runTests then "nixos-generate-tests" else "nixos-generate";
  inherit version src;

  cargoLock.lockFile = "${toString src}/Cargo.lock";
  cargoBuildFlags = [
    "-p"
    "nixos-generate"
  ];

  nativeBuildInputs = [ makeWrapper ];
  nativeCheckInputs = [
    nix
    qemu
  ];

  doCheck = runTests;
  # Unit and CLI tests (a fake nix, dry-run snapshots, every .nix file parses, the Nix entry
  # against a mock nixpkgs in a private store). The boot tests (tests/check.rs, the matrix)
  # need the Debian stand-in images, which cannot be built in the sandbox: the flake's
  # boot-<format> checks boot real NixOS images of each format instead.
  checkPhase = ''
    runHook preCheck
    export HOME=$TMPDIR NIX_STATE_DIR=$TMPDIR/nix-state CI=true INSTA_UPDATE=no
    export NIXGEN_TEST_PRIVATE_STORE=1
    ${lib.optionalString (runTests && path != null) "export NIXGEN_NIXPKGS_LIB=${path}/lib"}
    cargo test --offline -p nixos-generate --bins --test cli --test readme
    cargo test --offline -p formats
    cargo test --offline -p harness -p scenarios --lib
    runHook postCheck
  '';

  postInstall = ''
    wrapProgram $out/bin/nixos-generate \
      --prefix PATH : ${lib.makeBinPath front} \
      --suffix PATH : ${lib.makeBinPath [ nix ]} \
      ${ovmfFlag} ${ubootFlag}
  '';

  meta = {
    description = "Build a NixOS configuration into an image of any format, and boot-check it under QEMU";
    mainProgram = "nixos-generate";
    license = lib.licenses.mit;
    platforms = lib.platforms.linux ++ lib.platforms.darwin;
  };
}
