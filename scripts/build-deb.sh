#!/usr/bin/env bash
# Builds galley's Debian package with cargo-deb (installed when missing): /usr/bin/galley,
# a man page per command, bash/zsh/fish completions and the systemd units, declared in
# crates/galley/Cargo.toml ([package.metadata.deb]).
#
#   scripts/build-deb.sh                 a release build: target/debian/galley_<version>_amd64.deb
#   scripts/build-deb.sh --dev           the debug binary, quickly compressed, for tests:
#                                        target/debian-dev/galley_<version>_amd64.deb
#   scripts/build-deb.sh --dev --no-build  package target/debug/galley as it is (the
#                                        tests, whose cargo already built it and holds the
#                                        build directory's lock)
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
build=yes
for arg in "$@"; do
    case "$arg" in
    --dev) profile=dev ;;
    --no-build) build=no ;;
    *) sed -n '2,12p' "$0" >&2; exit 2 ;;
    esac
done

fail() {
    echo "build-deb: $*" >&2
    exit 1
}

export PATH="$HOME/.cargo/bin:$PATH"
command -v dpkg-shlibdeps >/dev/null || fail "dpkg-shlibdeps is missing (package dpkg-dev); run scripts/setup-debian.sh"
if ! command -v cargo-deb >/dev/null; then
    echo "build-deb: installing cargo-deb"
    cargo install --locked cargo-deb
fi

if [ "$profile" = release ]; then
    binary=target/release/galley
    output_dir=target/debian
    # The release profile keeps line tables for backtraces (Cargo.toml); the package
    # ships the binary without them (131 MB with, 22 MB without).
    cargo_deb=(--strip)
    [ "$build" = no ] || cargo build --release -p galley
else
    binary=target/debug/galley
    output_dir=target/debian-dev
    # cargo-deb warns that it is meant for releases; this package is for tests only.
    cargo_deb=(--profile dev --fast)
    [ "$build" = no ] || cargo build -p galley
fi
[ -x "$binary" ] || fail "$binary is missing; build it first (cargo build -p galley)"

# The man pages, completions and units, from the binary that goes into the package.
generated=crates/galley/debian/generated
rm -rf "$generated"
"$binary" package-files "$generated" >/dev/null

version=$("$binary" --version | awk '{print $2}')
arch=$(dpkg --print-architecture)
output="$output_dir/galley_${version}_${arch}.deb"
mkdir -p "$output_dir"
cargo deb -p galley --no-build "${cargo_deb[@]}" --output "$output"
echo "build-deb: $output"
