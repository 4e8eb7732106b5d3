#!/usr/bin/env bash
# Installs what pip cannot: Debian's Chromium (browser tests) and OpenSSH (SSH profile test).
# sudo when something is missing, otherwise it only reports.
set -euo pipefail
pkgs=()
[ -x /usr/bin/chromium ] || pkgs+=(chromium)
[ -x /usr/sbin/sshd ] || pkgs+=(openssh-server)  # tests/deploy: SSH profile to localhost
[ ${#pkgs[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
  echo "system-deps: missing ${pkgs[*]}; install them (apt-get install ${pkgs[*]})" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
