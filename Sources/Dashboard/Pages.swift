// The page: one HTML shell, one style sheet, one script, all served by the dashboard itself (no CDN,
// no fonts, no request elsewhere; the content security policy enforces it). The script renders
// every view from the JSON routes and polls them, so the HTML never needs a reload.
import Foundation

enum Pages {
    static let html = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Inkwell runs</title>
    <link rel="icon" href="data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Cpath d='M8 1 C11 6 13 8 13 10.5 A5 5 0 0 1 3 10.5 C3 8 5 6 8 1Z' fill='%231b2a41'/%3E%3C/svg%3E">
    <link rel="stylesheet" href="/assets/app.css">
    </head>
    <body>
    <header class="topbar">
      <a class="brand" href="#/"><span class="drop"></span>Inkwell <span class="brand-sub">runs</span></a>
      <nav class="topnav">
        <a href="#/" data-nav="home">Overview</a>
        <a href="#/compare" data-nav="compare">Compare</a>
      </nav>
      <span id="live" class="live" title="The page polls the runs folder every 2 seconds">connecting…</span>
    </header>
    <div class="layout">
      <aside id="sidebar" class="sidebar"><p class="muted">Loading runs…</p></aside>
      <main id="main" class="main"><p class="muted">Loading…</p></main>
    </div>
    <div id="lightbox" class="lightbox" hidden></div>
    <script src="/assets/app.js"></script>
    </body>
    </html>
    """#

    static var script: String { ScriptCharts.source + "\n" + ScriptApp.source + "\n" + ScriptViews.source }

    static let css = #"""
    :root {
      --paper: #f5f4f0; --card: #ffffff; --ink: #1b2a41; --text: #1f2328; --muted: #656d76;
      --line: #dedcd5; --soft: #eceae4; --accent: #1f5fa8; --warm: #c2410c; --good: #1a7f37; --star: #b7791f;
      --radius: 10px; --mono: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
    }
    * { box-sizing: border-box; }
    html, body { margin: 0; background: var(--paper); color: var(--text);
      font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
    a { color: var(--accent); text-decoration: none; }
    a:hover { text-decoration: underline; }
    h1 { font-size: 22px; margin: 0; color: var(--ink); letter-spacing: -0.01em; }
    h2 { font-size: 16px; margin: 0 0 10px; color: var(--ink); }
    h3 { font-size: 14px; margin: 0 0 6px; color: var(--ink); }
    .muted { color: var(--muted); }
    .mono { font-family: var(--mono); font-size: 12.5px; }

    .topbar { position: sticky; top: 0; z-index: 5; display: flex; align-items: center; gap: 24px;
      height: 52px; padding: 0 20px; background: var(--ink); color: #fff; }
    .brand { color: #fff; font-weight: 700; font-size: 17px; display: flex; align-items: center; gap: 8px; }
    .brand:hover { text-decoration: none; }
    .brand-sub { font-weight: 400; opacity: .65; }
    .drop { width: 12px; height: 16px; background: #fff; border-radius: 50% 50% 50% 50% / 65% 65% 35% 35%; }
    .topnav { display: flex; gap: 4px; }
    .topnav a { color: #d5deea; padding: 6px 12px; border-radius: 6px; }
    .topnav a.active, .topnav a:hover { background: rgba(255,255,255,.12); color: #fff; text-decoration: none; }
    .live { margin-left: auto; font-size: 12px; color: #c9d4e3; display: flex; align-items: center; gap: 6px; }
    .live::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: #8a96a8; }
    .live.ok::before { background: #4ade80; }
    .live.bad::before { background: #f87171; }

    .layout { display: grid; grid-template-columns: 264px minmax(0, 1fr); min-height: calc(100vh - 52px); }
    .sidebar { border-right: 1px solid var(--line); padding: 14px 12px 24px; background: #efeee9; }
    .main { padding: 20px 26px 60px; min-width: 0; }

    .side-group { margin-bottom: 14px; }
    .side-title { display: flex; align-items: center; justify-content: space-between; font-size: 11px;
      text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 6px 6px 4px; }
    .side-title a { text-transform: none; letter-spacing: 0; font-size: 12px; }
    .run-item { display: grid; grid-template-columns: 18px 1fr; align-items: start; gap: 4px; padding: 6px 6px;
      border-radius: 8px; }
    .run-item:hover { background: var(--soft); }
    .run-item.current { background: #e2e8f1; }
    .run-item input { margin: 3px 0 0; }
    .run-link { color: var(--text); font-weight: 600; display: flex; align-items: center; gap: 6px; word-break: break-all; }
    .run-meta { grid-column: 2; font-size: 12px; color: var(--muted); }
    .compare-button { width: 100%; margin-top: 6px; }

    .dot { width: 8px; height: 8px; flex: none; border-radius: 50%; background: #9aa3ad; display: inline-block; }
    .dot.training { background: #16a34a; box-shadow: 0 0 0 3px rgba(22,163,74,.18); }
    .dot.finished { background: var(--ink); }
    .dot.new { background: #e5e7eb; border: 1px solid #9aa3ad; }
    .pill { display: inline-flex; align-items: center; gap: 5px; padding: 1px 9px; border-radius: 999px; font-size: 12px;
      background: var(--soft); color: var(--text); white-space: nowrap; }
    .pill.training { background: #dcfce7; color: #14532d; }
    .pill.finished { background: #e2e8f1; color: var(--ink); }
    .pill.stopped { background: #fef3c7; color: #78350f; }
    .star { color: var(--star); }

    button, .button { font: inherit; border: 1px solid var(--line); background: var(--card); color: var(--text);
      padding: 5px 12px; border-radius: 7px; cursor: pointer; display: inline-flex; align-items: center; gap: 6px; }
    button:hover, .button:hover { border-color: #b9b6ad; text-decoration: none; }
    button.primary, .button.primary { background: var(--ink); color: #fff; border-color: var(--ink); }
    button:disabled { opacity: .5; cursor: default; }

    .page-head { display: flex; align-items: flex-end; justify-content: space-between; gap: 16px; margin-bottom: 16px; flex-wrap: wrap; }
    .page-head .sub { margin-top: 4px; color: var(--muted); display: flex; gap: 10px; align-items: center; flex-wrap: wrap; }
    .stats { display: flex; gap: 10px; flex-wrap: wrap; margin: 0 0 18px; }
    .stat { background: var(--card); border: 1px solid var(--line); border-radius: var(--radius); padding: 8px 14px; min-width: 118px; }
    .stat .k { font-size: 11px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); }
    .stat .v { font-size: 18px; font-weight: 650; color: var(--ink); font-variant-numeric: tabular-nums; }
    .progress { height: 6px; background: var(--soft); border-radius: 3px; overflow: hidden; width: 220px; }
    .progress > span { display: block; height: 100%; background: var(--accent); }

    .panel { background: var(--card); border: 1px solid var(--line); border-radius: var(--radius); padding: 16px 18px; margin-bottom: 18px; }
    .panel-head { display: flex; align-items: center; justify-content: space-between; gap: 12px; margin-bottom: 12px; flex-wrap: wrap; }
    .panel-head h2 { margin: 0; }

    .step-controls { display: flex; align-items: center; gap: 10px; }
    .step-controls input[type=range] { width: 300px; accent-color: var(--ink); }
    .step-label { font-variant-numeric: tabular-nums; min-width: 120px; font-weight: 600; }
    .prompt-block { margin-bottom: 16px; }
    .prompt-block:last-child { margin-bottom: 0; }
    .prompt-text { font-size: 13px; color: var(--text); margin-bottom: 8px; }
    .prompt-text b { color: var(--muted); font-weight: 600; margin-right: 6px; }
    .shots { display: flex; gap: 14px; flex-wrap: wrap; }
    figure { margin: 0; }
    .shot img { display: block; width: 288px; height: auto; aspect-ratio: 1; object-fit: contain; background: #fff;
      border: 1px solid var(--line); border-radius: 8px; cursor: zoom-in; }
    .shot figcaption { font-size: 12px; color: var(--muted); margin-top: 4px; }
    .shot.best img { border: 2px solid var(--star); }

    .grid-scroll { overflow-x: auto; padding-bottom: 6px; }
    table.progression { border-collapse: separate; border-spacing: 6px; }
    table.progression th { font-size: 12px; color: var(--muted); font-weight: 600; white-space: nowrap; text-align: center; }
    table.progression th.rowhead { text-align: left; max-width: 170px; white-space: normal; font-weight: 500; color: var(--text); }
    table.progression td { padding: 0; }
    table.progression img { display: block; width: 112px; height: 112px; object-fit: contain; background: #fff;
      border: 1px solid var(--line); border-radius: 6px; cursor: zoom-in; }
    table.progression .best img { border: 2px solid var(--star); }
    table.progression th.best { color: var(--star); }
    .empty-cell { width: 112px; height: 112px; border: 1px dashed var(--line); border-radius: 6px; }

    .charts { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 14px; }
    .chart-card { border: 1px solid var(--soft); border-radius: 8px; padding: 8px 8px 4px; position: relative; }
    .chart-card h3 { margin: 2px 6px 0; }
    svg.chart { width: 100%; height: auto; display: block; font-family: system-ui, sans-serif; }
    svg.chart .grid { stroke: #ecebe6; }
    svg.chart .axis { stroke: #b9b6ad; }
    svg.chart text { fill: #656d76; font-size: 11.5px; }
    svg.chart .legend text { fill: #1f2328; font-size: 12.5px; }
    svg.chart .empty { font-size: 13px; fill: #8c939b; }
    svg.chart .marker-label { fill: var(--star); font-weight: 600; }
    svg.chart .hover-line { stroke: #8c939b; stroke-dasharray: 3 3; }
    .tooltip { position: absolute; pointer-events: none; background: rgba(27,42,65,.94); color: #fff; font-size: 12px;
      padding: 6px 9px; border-radius: 6px; white-space: nowrap; z-index: 3; font-variant-numeric: tabular-nums; }

    .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 16px; }
    .card { background: var(--card); border: 1px solid var(--line); border-radius: var(--radius); overflow: hidden; color: var(--text); display: block; }
    .card:hover { border-color: #b9b6ad; text-decoration: none; box-shadow: 0 2px 10px rgba(0,0,0,.05); }
    .card .thumb { aspect-ratio: 1; background: #fff; border-bottom: 1px solid var(--soft); display: flex; align-items: center; justify-content: center; }
    .card .thumb img { width: 100%; height: 100%; object-fit: contain; }
    .card .thumb .none { color: var(--muted); font-size: 12px; }
    .card .body { padding: 10px 12px 12px; }
    .card .title { font-weight: 650; display: flex; align-items: center; gap: 6px; word-break: break-all; }
    .card .line { font-size: 12.5px; color: var(--muted); margin-top: 3px; }
    .section-title { margin: 24px 0 10px; }

    table.data { border-collapse: collapse; width: 100%; font-size: 13px; }
    table.data th, table.data td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--soft); vertical-align: top; }
    table.data th { font-size: 12px; color: var(--muted); font-weight: 600; }
    table.data tr.best td { background: #fdf6e3; }
    .config-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(290px, 1fr)); gap: 14px; }
    .config-grid table.data td:first-child { color: var(--muted); white-space: nowrap; width: 40%; }
    .config-grid ul { margin: 0; padding-left: 18px; }

    .compare-row { margin-bottom: 20px; }
    .compare-row .shots .shot img { width: 240px; }
    .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; vertical-align: middle; }
    .chooser { display: flex; flex-wrap: wrap; gap: 8px; }
    .chooser label { display: inline-flex; gap: 6px; align-items: center; padding: 4px 10px; background: var(--card);
      border: 1px solid var(--line); border-radius: 999px; cursor: pointer; font-size: 13px; }
    .no-sample { width: 240px; aspect-ratio: 1; border: 1px dashed var(--line); border-radius: 8px; display: flex;
      align-items: center; justify-content: center; color: var(--muted); font-size: 12px; }
    .wide-image { max-width: 100%; border: 1px solid var(--line); border-radius: 8px; background: #fff; display: block; }
    .plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 14px; }
    .plots img { width: 100%; background: #fff; border: 1px solid var(--line); border-radius: 8px; }

    .markdown table { border-collapse: collapse; font-size: 13px; margin: 8px 0 14px; }
    .markdown th, .markdown td { border: 1px solid var(--line); padding: 5px 10px; }
    .markdown th { background: #f3f2ee; }
    .markdown tr:nth-child(even) td { background: #fbfaf8; }
    .markdown code { font-family: var(--mono); font-size: 12.5px; background: var(--soft); padding: 1px 4px; border-radius: 4px; }
    .markdown pre { background: #f3f2ee; padding: 10px; border-radius: 6px; overflow-x: auto; }
    .markdown img { max-width: 100%; }
    .table-wrap { overflow-x: auto; }

    .lightbox { position: fixed; inset: 0; z-index: 20; background: rgba(15,20,30,.82); display: flex;
      align-items: center; justify-content: center; padding: 30px; cursor: zoom-out; }
    .lightbox[hidden] { display: none; }
    .lightbox figure { background: #fff; border-radius: 10px; padding: 14px; max-width: min(92vw, 980px); max-height: 92vh;
      display: flex; flex-direction: column; gap: 10px; cursor: default; }
    .lightbox img { max-width: 100%; max-height: 72vh; object-fit: contain; align-self: center; }
    .lightbox figcaption { font-size: 12.5px; color: var(--text); white-space: pre-wrap; overflow: auto; max-height: 16vh; }
    .notice { padding: 10px 14px; border-radius: 8px; background: #fef3c7; color: #78350f; margin-bottom: 14px; }
    """#
}
