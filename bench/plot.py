"""A hand-written SVG: latency over time across token rotations (no plotting dependency)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

W, H = 960, 420
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 40, 50


def rotation_svg(
    series: Sequence[Sequence[float]], rotations: Sequence[float], title: str, bucket_s: float = 0.1
) -> str:
    """Per ``bucket_s``: max (light) and median (dark) commit-to-handler latency, log-free
    linear ms axis; dashed verticals at each token rotation."""
    buckets: dict[int, list[float]] = {}
    for t, ms in series:
        buckets.setdefault(int(t / bucket_s), []).append(ms)
    keys = sorted(buckets)
    t_max = max([k * bucket_s for k in keys] + list(rotations) + [1.0])
    peaks = [max(buckets[k]) for k in keys]
    y_max = max([*peaks, 1.0]) * 1.1
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + t / t_max * pw

    def y(ms: float) -> float:
        return TOP + ph - ms / y_max * ph

    def line(points: list[tuple[float, float]], colour: str, width: float) -> str:
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points)
        return f'<polyline fill="none" stroke="{colour}" stroke-width="{width}" points="{path}"/>'

    medians = [(k * bucket_s, sorted(buckets[k])[len(buckets[k]) // 2]) for k in keys]
    maxima = [(k * bucket_s, max(buckets[k])) for k in keys]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{escape(title)}</text>',
        f'<line x1="{LEFT}" y1="{TOP + ph}" x2="{LEFT + pw}" y2="{TOP + ph}" stroke="black"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + ph}" stroke="black"/>',
    ]
    for i in range(6):
        ms = y_max / 1.1 * i / 5
        parts.append(
            f'<text x="{LEFT - 6}" y="{y(ms) + 4:.1f}" text-anchor="end">{ms:.0f}</text>'
            f'<line x1="{LEFT}" y1="{y(ms):.1f}" x2="{LEFT + pw}" y2="{y(ms):.1f}" '
            'stroke="#eee"/>'
        )
        t = t_max * i / 5
        parts.append(
            f'<text x="{x(t):.1f}" y="{TOP + ph + 18}" text-anchor="middle">{t:.0f}</text>'
        )
    for r in rotations:
        parts.append(
            f'<line x1="{x(r):.1f}" y1="{TOP}" x2="{x(r):.1f}" y2="{TOP + ph}" '
            'stroke="#d62728" stroke-dasharray="4,3"/>'
        )
    parts.append(line(maxima, "#9ecae1", 1))
    parts.append(line(medians, "#08519c", 1.5))
    parts += [
        f'<text x="{W / 2}" y="{H - 12}" text-anchor="middle">seconds since the first commit'
        "</text>",
        f'<text x="16" y="{TOP + ph / 2}" transform="rotate(-90 16 {TOP + ph / 2})" '
        'text-anchor="middle">commit to handler start (ms)</text>',
        f'<text x="{LEFT + 10}" y="{TOP + 14}" fill="#08519c">median per {bucket_s:g} s</text>',
        f'<text x="{LEFT + 150}" y="{TOP + 14}" fill="#6baed6">max per {bucket_s:g} s</text>',
        f'<text x="{LEFT + 280}" y="{TOP + 14}" fill="#d62728">token rotation</text>',
        "</svg>",
    ]
    return "\n".join(parts) + "\n"
