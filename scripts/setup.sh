#!/usr/bin/env bash
# Installs what Crossway and its tests need, only what is missing: Debian packages listed in
# scripts/deps/apt-packages.txt, npm packages from package-lock.json, and peers built from ../shared/peers.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
while read -r pkg _; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done < scripts/deps/apt-packages.txt
if ((${#missing[@]})); then
  echo "== apt-get install ${missing[*]}"
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages: reinstall only when package-lock.json changed since the last install.
stamp=node_modules/.crossway-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "== npm ci"
  npm ci --no-fund --no-audit --loglevel=error
  echo "$want" > "$stamp"
fi

for hook in scripts/setup.d/*.sh; do
  [[ -e "$hook" ]] || continue
  bash "$hook"
done
