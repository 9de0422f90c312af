"""The report's stylesheet, inlined into report.html so the file works offline and prints cleanly."""
from __future__ import annotations

CSS = """
:root {
  --ink: #0f172a; --muted: #64748b; --line: #e2e8f0; --soft: #f8fafc; --brand: #4f46e5;
  --base: #94a3b8; --up: #15803d; --up-bg: #dcfce7; --down: #b91c1c; --down-bg: #fee2e2;
}
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body {
  margin: 0; background: #f1f5f9; color: var(--ink); line-height: 1.5; font-size: 15px;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
main { max-width: 1040px; margin: 0 auto; padding: 40px 32px 56px; }
section, header.top {
  background: #fff; border: 1px solid var(--line); border-radius: 14px; padding: 24px 28px; margin-bottom: 20px;
}
h1 { font-size: 26px; margin: 4px 0 14px; letter-spacing: -0.01em; }
h2 { font-size: 18px; margin: 0 0 14px; }
h3 { font-size: 13px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 0 0 8px; }
.eyebrow { margin: 0; color: var(--brand); font-weight: 600; font-size: 13px; letter-spacing: .08em;
  text-transform: uppercase; }
.meta { display: grid; grid-template-columns: repeat(3, 1fr); gap: 10px 24px; margin: 0; }
.meta dt { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .05em; }
.meta dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }
.headline { background: linear-gradient(135deg, #312e81, #4f46e5); color: #fff; border: 0; }
.headline .big { font-size: 44px; font-weight: 800; margin: 0; letter-spacing: -0.02em; }
.headline .big .before { opacity: .65; }
.headline .sub { margin: 6px 0 0; opacity: .85; }
.headline .verdict { margin: 4px 0 10px; font-size: 20px; font-weight: 700; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 16px; background: none;
  border: 0; padding: 0; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 14px; padding: 18px 22px; }
.card .label { color: var(--muted); font-size: 13px; font-weight: 600; text-transform: uppercase;
  letter-spacing: .05em; }
.card .value { font-size: 28px; font-weight: 750; margin: 4px 0; }
.card .value .before { color: var(--base); }
.card .arrow { color: var(--muted); font-weight: 400; margin: 0 2px; }
.card .note { color: var(--muted); font-size: 12.5px; margin: 8px 0 0; }
.card .ci { font-size: 12.5px; font-weight: 600; margin: 6px 0 0; }
.pill { display: inline-block; padding: 2px 10px; border-radius: 999px; font-size: 13px; font-weight: 600; }
.pill.up { background: var(--up-bg); color: var(--up); }
.pill.down { background: var(--down-bg); color: var(--down); }
.pill.flat { background: var(--soft); color: var(--muted); }
.chart { width: 100%; height: auto; display: block; }
.chart .grid { stroke: var(--line); stroke-width: 1; }
.chart .axis { stroke: #94a3b8; stroke-width: 1; }
.chart .tick, .chart .legend { fill: var(--muted); font-size: 12px; }
.chart .axis-label { fill: var(--ink); font-size: 13px; }
.chart .empty { fill: var(--muted); font-size: 16px; }
.caption { color: var(--muted); font-size: 13px; margin: 8px 0 0; }
.example { border: 1px solid var(--line); border-radius: 12px; padding: 16px 18px; margin-bottom: 14px;
  break-inside: avoid; }
.example .task { font-weight: 600; margin: 0 0 10px; white-space: pre-wrap; overflow-wrap: anywhere; }
.example .task .input { display: block; font-weight: 400; color: var(--muted); }
.answers { display: grid; grid-template-columns: repeat(3, 1fr); gap: 12px; }
.answer { background: var(--soft); border-radius: 8px; padding: 10px 12px; min-width: 0; }
.answer pre, td pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere;
  font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.answer.tuned { background: #eef2ff; }
.answer .score { float: right; color: var(--muted); font-size: 12px; font-weight: 600; }
.none { color: var(--muted); font-style: italic; margin: 0; }
.settings { columns: 2; column-gap: 32px; }
.settings > div { break-inside: avoid; margin-bottom: 18px; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.settings td:first-child { color: var(--muted); width: 48%; }
.settings td:last-child { overflow-wrap: anywhere; }
details summary { cursor: pointer; font-weight: 700; font-size: 18px; }
details.raw summary { font-size: 12.5px; font-weight: 600; color: var(--muted); }
details.raw[open] summary { margin-bottom: 6px; }
.example details.raw { margin-top: 10px; }
.raws { display: grid; grid-template-columns: repeat(2, 1fr); gap: 12px; }
details[open] summary { margin-bottom: 12px; }
.all td pre { max-width: 260px; }
footer { color: var(--muted); font-size: 12.5px; text-align: center; }
@media (max-width: 760px) {
  .cards, .answers, .raws, .meta { grid-template-columns: 1fr; }
  .settings { columns: 1; }
  .headline .big { font-size: 32px; }
}
@media print {
  body { background: #fff; font-size: 12px; }
  main { max-width: none; padding: 0; }
  section, header.top, .card { border-color: #cbd5e1; break-inside: avoid; }
  details::details-content { content-visibility: visible; display: contents; }
  details summary { list-style: none; }
  section.full { break-inside: auto; }
}
"""
