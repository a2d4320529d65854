#!/usr/bin/env bash
# The README's pictures, made again: three example reports (runs on the embedded digits, their report.html rendered by
# headless Chromium, Debian's `chromium` package) saved as docs/report-{supervised,clip,vae}.png, and the lab (a run's
# page while it trains, from the lab's browser tests) as docs/lab.png, docs/lab-attack.png and docs/lab-gpt.png.
#   bash docs/screenshots.sh [WORK_DIR]        (about six minutes on two cores)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-runs/screenshots}
paradigms=${PARADIGMS:-.venv/bin/paradigms}
export PARADIGMS_PROGRESS=0
rm -rf "$work" && mkdir -p "$work"
# supervised under Gaussian noise (so that it can be certified), then attacked twice and certified
$paradigms run supervised --out "$work/supervised" --set 'augment=[{gaussian_noise: {sigma: 0.25}}]'
$paradigms attack "$work/supervised" --eps 0,0.05,0.1,0.2 --steps 10 --n 360
$paradigms attack "$work/supervised" --eps 0.1 --steps 10 --n 360 --target 3
$paradigms certify "$work/supervised" --n 2000 --n0 50 --skip 6
$paradigms run clip --out "$work/clip"
$paradigms run vae --out "$work/vae"
shoot() {  # a tall window, then the empty bottom cut away
  chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
    --disable-sync --no-first-run --hide-scrollbars --user-data-dir="$(mktemp -d)" \
    --window-size=1200,"$3" --screenshot="$2" "file://$(realpath "$1")" 2>/dev/null
  .venv/bin/python - "$2" <<'PY'
import sys
from PIL import Image, ImageChops
img = Image.open(sys.argv[1]).convert("RGB")
box = ImageChops.difference(img, Image.new("RGB", img.size, (255, 255, 255))).getbbox()
img.crop((0, 0, img.width, min(img.height, box[3] + 24))).save(sys.argv[1], optimize=True)
PY
}
shoot "$work/supervised/report.html" docs/report-supervised.png 9000
shoot "$work/clip/report.html" docs/report-clip.png 7000
shoot "$work/vae/report.html" docs/report-vae.png 7000
PARADIGMS_SCREENSHOTS=docs .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_lab_browser.py
echo "wrote docs/report-supervised.png docs/report-clip.png docs/report-vae.png docs/lab.png docs/lab-attack.png docs/lab-gpt.png"
