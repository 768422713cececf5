#!/bin/sh
# Make sure Debian's Chromium (and the CJK fonts the zh-CN pages need) is here before the browser tests run.
# Installed with apt-get when missing and we are root (as CI runs); otherwise stop with what to install.
# Never a silent skip: without Chromium the browser tests fail.
set -eu
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "Chromium is missing: the browser tests (tests/browser) need Debian's chromium and fonts-noto-cjk." >&2
  echo "Install them as root: apt-get install -y chromium fonts-noto-cjk   (make test does this when run as root)" >&2
  exit 1
fi
echo "Installing Debian's chromium and fonts-noto-cjk for the browser tests ..."
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq chromium fonts-noto-cjk >/dev/null 2>&1 || {
  apt-get update -qq >/dev/null
  apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
}
command -v chromium >/dev/null 2>&1 || { echo "chromium still missing after apt-get install" >&2; exit 1; }
