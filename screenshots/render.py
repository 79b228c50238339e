"""Renders a terminal screen captured with `tmux capture-pane -e -p` (text with SGR colour
escapes) to a PNG, cell by cell, in DejaVu Sans Mono. Usage: render.py SCREEN.ansi OUT.png"""

import re
import sys

from PIL import Image, ImageDraw, ImageFont

FONT_DIR = "/usr/share/fonts/truetype/dejavu/"
SIZE = 15
BACKGROUND = (24, 26, 33)
FOREGROUND = (220, 223, 228)
# xterm's 16 colours, a little softened.
PALETTE = [
    (40, 42, 54), (224, 82, 82), (80, 200, 120), (229, 192, 80),
    (97, 145, 230), (198, 120, 221), (86, 182, 194), (220, 223, 228),
    (92, 99, 112), (255, 110, 110), (120, 230, 150), (255, 220, 120),
    (130, 170, 255), (220, 150, 240), (120, 210, 220), (255, 255, 255),
]
SGR = re.compile(r"\x1b\[([0-9;:]*)m")


def xterm_256(n):
    if n < 16:
        return PALETTE[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    grey = 8 + (n - 232) * 10
    return (grey, grey, grey)


def parse(text):
    """Lines of cells: (char, fg, bg, bold, dim, underline)."""
    lines = []
    style = dict(fg=None, bg=None, bold=False, dim=False, reverse=False, underline=False)
    for raw in text.split("\n"):
        cells = []
        position = 0
        for match in list(SGR.finditer(raw)) + [None]:
            end = match.start() if match else len(raw)
            for ch in raw[position:end]:
                fg, bg = style["fg"] or FOREGROUND, style["bg"] or BACKGROUND
                if style["reverse"]:
                    fg, bg = bg, fg
                if style["dim"]:
                    fg = tuple((c + b) // 2 for c, b in zip(fg, bg))
                cells.append((ch, fg, bg, style["bold"], style["underline"]))
            if not match:
                break
            position = match.end()
            codes = [int(c) if c else 0 for c in re.split("[;:]", match.group(1) or "0")]
            i = 0
            while i < len(codes):
                c = codes[i]
                if c == 0:
                    style.update(fg=None, bg=None, bold=False, dim=False, reverse=False, underline=False)
                elif c == 1:
                    style["bold"] = True
                elif c == 2:
                    style["dim"] = True
                elif c == 4:
                    style["underline"] = True
                elif c == 7:
                    style["reverse"] = True
                elif c == 22:
                    style["bold"] = style["dim"] = False
                elif c == 24:
                    style["underline"] = False
                elif c == 27:
                    style["reverse"] = False
                elif 30 <= c <= 37:
                    style["fg"] = PALETTE[c - 30]
                elif 90 <= c <= 97:
                    style["fg"] = PALETTE[c - 90 + 8]
                elif 40 <= c <= 47:
                    style["bg"] = PALETTE[c - 40]
                elif 100 <= c <= 107:
                    style["bg"] = PALETTE[c - 100 + 8]
                elif c == 39:
                    style["fg"] = None
                elif c == 49:
                    style["bg"] = None
                elif c in (38, 48) and i + 1 < len(codes):
                    key = "fg" if c == 38 else "bg"
                    if codes[i + 1] == 5 and i + 2 < len(codes):
                        style[key] = xterm_256(codes[i + 2])
                        i += 2
                    elif codes[i + 1] == 2 and i + 4 < len(codes):
                        style[key] = tuple(codes[i + 2:i + 5])
                        i += 4
                i += 1
        lines.append(cells)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def render(lines, out):
    regular = ImageFont.truetype(FONT_DIR + "DejaVuSansMono.ttf", SIZE)
    bold = ImageFont.truetype(FONT_DIR + "DejaVuSansMono-Bold.ttf", SIZE)
    left, top, right, bottom = regular.getbbox("█")
    width, height = round(regular.getlength("M")), bottom - top + 3
    columns = max(len(l) for l in lines)
    pad = 12
    image = Image.new("RGB", (columns * width + 2 * pad, len(lines) * height + 2 * pad), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for y, cells in enumerate(lines):
        for x, (ch, fg, bg, is_bold, underline) in enumerate(cells):
            x0, y0 = pad + x * width, pad + y * height
            if bg != BACKGROUND:
                draw.rectangle([x0, y0, x0 + width - 1, y0 + height - 1], fill=bg)
            if ch == "█":
                draw.rectangle([x0, y0, x0 + width - 1, y0 + height - 1], fill=fg)
            elif ch in "─│┌┐└┘":
                middle_x, middle_y = x0 + width // 2, y0 + height // 2
                if ch in "─┌┐└┘":
                    x_from = middle_x if ch in "┌└" else x0
                    x_to = middle_x if ch in "┐┘" else x0 + width
                    draw.line([x_from, middle_y, x_to, middle_y], fill=fg)
                if ch in "│┌┐└┘":
                    y_from = middle_y if ch in "┌┐" else y0
                    y_to = middle_y if ch in "└┘" else y0 + height
                    draw.line([middle_x, y_from, middle_x, y_to], fill=fg)
            elif ch != " ":
                draw.text((x0, y0 + 1 - top), ch, font=bold if is_bold else regular, fill=fg)
            if underline:
                draw.line([x0, y0 + height - 2, x0 + width, y0 + height - 2], fill=fg)
    image.save(out)


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        render(parse(f.read()), sys.argv[2])
