#!/usr/bin/env bash
# Generates what the package ships beside the binary, from the binary itself (so it never
# drifts from the CLI): man pages and bash/zsh/fish completions.
# Usage: packaging/gen-assets.sh [BINARY] [OUT_DIR]   (default: target/release/provision-tui,
# packaging/generated, the paths Cargo.toml's [package.metadata.deb] reads)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../target/release/provision-tui}
out=${2:-$here/generated}
rm -rf "$out/man" "$out/completions"
mkdir -p "$out/completions"
env -u PROVISION_TUI_DB "$bin" man --out "$out/man" 2>/dev/null
"$bin" completions bash > "$out/completions/provision-tui.bash"
"$bin" completions zsh > "$out/completions/_provision-tui"
"$bin" completions fish > "$out/completions/provision-tui.fish"
echo "$out"
