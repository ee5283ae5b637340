#!/usr/bin/env bash
# Builds provision-tui_VERSION_ARCH.deb from an already built binary with dpkg-deb, so CI can
# package the debug binary its tests built (seconds) instead of a release build. The same
# layout is in Cargo.toml's [package.metadata.deb] for `cargo deb` (release builds):
#   cargo build --release && packaging/gen-assets.sh target/release/provision-tui && cargo deb --no-build
#
# Usage: packaging/build-deb.sh BINARY OUT_DIR     (prints the .deb's path)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(realpath "${1:?usage: build-deb.sh BINARY OUT_DIR}")
out=$(realpath -m "${2:?usage: build-deb.sh BINARY OUT_DIR}")
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/../Cargo.toml" | head -1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

"$here/gen-assets.sh" "$bin" "$stage/assets" >/dev/null
install -D -m 0755 "$bin" "$stage/root/usr/bin/provision-tui"
# Debug info is most of a debug binary's size; the tables for backtraces stay.
strip --strip-debug "$stage/root/usr/bin/provision-tui" 2>/dev/null || true
install -d "$stage/root/usr/share/man/man1"
for p in "$stage"/assets/man/*.1; do gzip -9n -c "$p" > "$stage/root/usr/share/man/man1/$(basename "$p").gz"; done
install -D -m 0644 "$stage/assets/completions/provision-tui.bash" "$stage/root/usr/share/bash-completion/completions/provision-tui"
install -D -m 0644 "$stage/assets/completions/_provision-tui" "$stage/root/usr/share/zsh/vendor-completions/_provision-tui"
install -D -m 0644 "$stage/assets/completions/provision-tui.fish" "$stage/root/usr/share/fish/vendor_completions.d/provision-tui.fish"
install -D -m 0644 "$here/provision-tui-watch.service" "$stage/root/lib/systemd/system/provision-tui-watch.service"
install -D -m 0644 "$here/default.env" "$stage/root/etc/default/provision-tui"
install -D -m 0644 "$here/../docs/BASTION.md" "$stage/root/usr/share/doc/provision-tui/BASTION.md"
install -D -m 0644 "$here/../README.md" "$stage/root/usr/share/doc/provision-tui/README.md"

install -d "$stage/root/DEBIAN"
install -m 0755 "$here"/debian/postinst "$here"/debian/prerm "$here"/debian/postrm "$stage/root/DEBIAN/"
echo /etc/default/provision-tui > "$stage/root/DEBIAN/conffiles"
size=$(du -sk "$stage/root" | cut -f1)
cat > "$stage/root/DEBIAN/control" <<CONTROL
Package: provision-tui
Version: $version
Architecture: $arch
Maintainer: provision-tui developers <provision-tui@localhost>
Installed-Size: $size
Depends: libc6, passwd, openssh-client
Section: admin
Priority: optional
Description: provision and watch a fleet of Linux servers over SSH
 A keyboard-driven terminal dashboard and headless CLI, with a systemd
 health watcher (provision-tui-watch.service), man pages and completions.
CONTROL
mkdir -p "$out"
deb="$out/provision-tui_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zgzip -z1 --build "$stage/root" "$deb" >/dev/null
echo "$deb"
