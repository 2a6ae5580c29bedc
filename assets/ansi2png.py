#!/usr/bin/env python3
"""Turns `tmux capture-pane -e -p` output (text with SGR escape codes) into a
PNG, cell by cell, with DejaVu Sans Mono: how the README's screenshots are
made from the real TUI (see make-screenshots.sh). Needs Pillow."""
import re
import sys

from PIL import Image, ImageDraw, ImageFont

BASE = [(0, 0, 0), (205, 49, 49), (13, 188, 121), (229, 229, 16), (36, 114, 200),
        (188, 63, 188), (17, 168, 205), (229, 229, 229)]
BRIGHT = [(102, 102, 102), (241, 76, 76), (35, 209, 139), (245, 245, 67), (59, 142, 234),
          (214, 112, 214), (41, 184, 219), (255, 255, 255)]
FG, BG = (220, 220, 220), (24, 24, 28)


def color256(n):
    if n < 8:
        return BASE[n]
    if n < 16:
        return BRIGHT[n - 8]
    if n < 232:
        n -= 16
        return tuple(0 if c == 0 else 55 + 40 * c for c in (n // 36, n // 6 % 6, n % 6))
    v = 8 + 10 * (n - 232)
    return (v, v, v)


def main(src, dst):
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf", 15)
    bold = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf", 15)
    cw, ch = 9, 19
    lines = open(src, encoding="utf-8", errors="replace").read().rstrip("\n").split("\n")
    cols = 120
    img = Image.new("RGB", (cols * cw + 16, len(lines) * ch + 16), BG)
    d = ImageDraw.Draw(img)
    for y, line in enumerate(lines):
        fg, bg, b, rev = FG, None, False, False
        x = 0
        for tok in re.split(r"(\x1b\[[0-9;]*m)", line):
            m = re.fullmatch(r"\x1b\[([0-9;]*)m", tok)
            if m:
                codes = [int(c) if c else 0 for c in m.group(1).split(";")]
                i = 0
                while i < len(codes):
                    c = codes[i]
                    if c == 0:
                        fg, bg, b, rev = FG, None, False, False
                    elif c == 1:
                        b = True
                    elif c == 22:
                        b = False
                    elif c == 7:
                        rev = True
                    elif c == 27:
                        rev = False
                    elif 30 <= c <= 37:
                        fg = BASE[c - 30]
                    elif 90 <= c <= 97:
                        fg = BRIGHT[c - 90]
                    elif c == 39:
                        fg = FG
                    elif 40 <= c <= 47:
                        bg = BASE[c - 40]
                    elif 100 <= c <= 107:
                        bg = BRIGHT[c - 100]
                    elif c == 49:
                        bg = None
                    elif c in (38, 48) and i + 2 < len(codes) and codes[i + 1] == 5:
                        if c == 38:
                            fg = color256(codes[i + 2])
                        else:
                            bg = color256(codes[i + 2])
                        i += 2
                    elif c in (38, 48) and i + 4 < len(codes) and codes[i + 1] == 2:
                        rgb = tuple(codes[i + 2:i + 5])
                        if c == 38:
                            fg = rgb
                        else:
                            bg = rgb
                        i += 4
                    i += 1
                continue
            for chr_ in tok:
                f, g = (bg or BG, fg) if rev else (fg, bg)
                px, py = 8 + x * cw, 8 + y * ch
                if g is not None:
                    d.rectangle([px, py, px + cw - 1, py + ch - 1], fill=g)
                if chr_ == "█":
                    d.rectangle([px, py + 2, px + cw - 1, py + ch - 3], fill=f)
                elif 0x2800 <= ord(chr_) <= 0x28FF:
                    # Braille (ratatui's charts): draw the dots, the font has none.
                    bits = ord(chr_) - 0x2800
                    dots = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (0, 3), (1, 3)]
                    for k, (dx, dy) in enumerate(dots):
                        if bits >> k & 1:
                            cx, cy = px + 2 + dx * 4, py + 2 + dy * 4
                            d.rectangle([cx, cy, cx + 2, cy + 2], fill=f)
                elif chr_ != " ":
                    d.text((px, py), chr_, font=bold if b else font, fill=f)
                x += 1
    img.save(dst)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
