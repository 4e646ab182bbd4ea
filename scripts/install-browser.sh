#!/usr/bin/env bash
# Installs Debian's Chromium (and a Japanese font) for the widget's browser test.
# Idempotent: does nothing when both are already there. Playwright drives this system
# browser; `playwright install` is never used (browser downloads are not possible here).
set -euo pipefail

packages=()
[ -x /usr/bin/chromium ] || packages+=(chromium)
# Without these fonts, Japanese text and the 👍/👎 icons render as boxes in screenshots.
for font in fonts-noto-cjk fonts-noto-color-emoji; do
    dpkg -s "$font" >/dev/null 2>&1 || packages+=("$font")
done

if [ ${#packages[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/install-browser.sh: need root to apt-get install ${packages[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}"
