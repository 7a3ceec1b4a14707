#!/usr/bin/env bash
# The tutorial's screenshots of wxb report (docs/images/report-*.png): the default digits
# model, and a deliberately saturated deep sigmoid network. Needs Debian's chromium.
set -euo pipefail
images="$(cd "$(dirname "$0")" && pwd)"
wxb="${WXB:-wxb}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
$wxb train --history h.json --diagnose -q
$wxb report model.safetensors --history h.json --sample 7 -o digits.html  # as the tutorial
$wxb train --hidden 64,64,64,64,64,64,64 --activation sigmoid --lr 0.05 --epochs 5 \
    --diagnose --history deep.json -q -o deep.safetensors
$wxb report deep.safetensors --history deep.json --sample 5 -o deep.html
shot() {  # page, png, window height; offline, as the browser test opens it
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$work/p" \
        --proxy-server=127.0.0.1:9 --host-resolver-rules="MAP * ~NOTFOUND" \
        --virtual-time-budget=30000 --window-size=1200,"$3" --screenshot="$2" "file://$work/$1" \
        2>/dev/null
}
shot digits.html digits.png 40000
shot deep.html deep.png 40000
# The top of the digits page and its walk-through; the training section (the last one) of the deep network's.
${PYTHON:-python3} - "$images" <<'PY'
import sys
import numpy as np
from PIL import Image

def content_end(image):
    pixels = np.asarray(image).astype(int)
    rows = np.where((np.abs(pixels - pixels[-1, -1]).sum(2) > 10).any(1))[0]
    return int(rows.max()) + 20

digits = Image.open("digits.png").convert("RGB")
digits.crop((0, 0, 1200, 3000)).convert("P", palette=Image.ADAPTIVE).save(f"{sys.argv[1]}/report-digits.png", optimize=True)
# The walk-through's forward pass and first backward steps (below the summary; by eye).
digits.crop((0, 3470, 1200, 6000)).convert("P", palette=Image.ADAPTIVE).save(f"{sys.argv[1]}/report-walkthrough.png", optimize=True)
deep = Image.open("deep.png").convert("RGB")
end = content_end(deep)
deep.crop((0, end - 2450, 1200, end)).convert("P", palette=Image.ADAPTIVE).save(f"{sys.argv[1]}/report-deep-sigmoid.png", optimize=True)
PY
ls -la "$images"/report-*.png
