"""The staff report as Markdown, CSV, one HTML page, and the alternates as a YAML snippet.

Everything quoted from the log is text people typed, so each format escapes it for its
own syntax: HTML entities, `|` in Markdown tables, formula prefixes in CSV (a cell
starting with "=" would run in a spreadsheet). The HTML page is self-contained (no
scripts, fonts or links to fetch) so it can be mailed or opened offline on a phone.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from bot.report import DayChannel, QueryGroup, Report

KIND_LABELS = {
    "answered": "回答",
    "ambiguous": "候補提示",
    "fallback": "窓口案内",
    "smalltalk": "雑談",
    "urgent": "緊急",
}
CHART_KINDS = ("answered", "ambiguous", "fallback")
CHART_COLORS = {"answered": "#2e7d32", "ambiguous": "#f9a825", "fallback": "#c62828"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_SVG_SIZE = re.compile(r'<svg([^>]*?)\swidth="[^"]*"\s+height="[^"]*"')

Cell = str | int | float | None


def _when(value: dt.datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%d %H:%M")


def _pct(value: float | None) -> str | None:
    return None if value is None else f"{value:.1%}"


def _kind(kind: str) -> str:
    label = KIND_LABELS.get(kind)
    return f"{label} ({kind})" if label else kind


def _decisions(group: QueryGroup) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in group.decisions)


def _top(group: QueryGroup) -> str | None:
    if group.top_entry is None:
        return None
    return f"{group.top_entry}: {group.top_question}" if group.top_question else group.top_entry


def _grouping_note(report: Report) -> str:
    if report.clustered:
        note = f"似た質問はまとめて数えています（類似度 {report.options.cluster_similarity:.2f} 以上）。"
    else:
        note = "モデルなしで作成したため、表記が同じ質問だけをまとめています。"
    if report.groups_total > len(report.groups):
        note += f"全{report.groups_total}件のうち件数の多い{len(report.groups)}件を表示しています。"
    return note


def _summary_rows(report: Report) -> list[tuple[str, Cell]]:
    return [
        ("期間の開始 / from", _when(report.start)),
        ("期間の終了 / to", _when(report.end)),
        ("問い合わせ数 / asks", report.asks),
        ("利用者数 / people", report.people),
        ("回答できなかった・自信の低い問い合わせ / uncertain asks", report.uncertain_asks),
        ("異なる表現の数 / distinct texts", report.uncertain_texts),
        ("質問のまとまり / groups", report.groups_total),
    ]


def _group_rows(report: Report) -> list[list[Cell]]:
    return [
        [g.count, " / ".join(g.examples), g.texts, _decisions(g), _top(g), _when(g.last_seen)] for g in report.groups
    ]


_GROUP_HEAD = ["件数", "質問の例", "表現の数", "判定", "近い項目", "最終"]
_ALT_HEAD = ["項目 id", "項目の質問", "言い換え候補", "回数"]
_ENTRY_HEAD = ["項目 id", "分類", "質問", "回答数", "👍", "👎", "👍率", "候補から選択"]


def _alternate_rows(report: Report) -> list[list[Cell]]:
    return [[e.entry_id, e.question, p.text, p.seen] for e in report.alternates for p in e.proposals]


def _entry_rows(report: Report) -> list[list[Cell]]:
    return [
        [s.entry_id, s.category, s.question, s.answered, s.helpful, s.unhelpful, _pct(s.helpful_ratio), s.picks]
        for s in report.entries
    ]


def _day_head(report: Report) -> list[str]:
    return ["日付", "チャネル", "件数", *(_kind(k) for k in report.decision_kinds)]


def _day_rows(report: Report) -> list[list[Cell]]:
    return [
        [d.day.isoformat(), d.channel, d.asks, *(_pct(d.share(k)) for k in report.decision_kinds)] for d in report.days
    ]


def _text(value: Cell) -> str:
    return "-" if value is None else str(value)


def _md_cell(value: Cell) -> str:
    return " ".join(_text(value).split()).replace("|", "\\|")


def _md_table(head: Sequence[str], rows: Iterable[Sequence[Cell]]) -> list[str]:
    lines = ["| " + " | ".join(map(_md_cell, head)) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in rows]
    return lines if len(lines) > 2 else ["（該当なし）"]


def render_markdown(report: Report) -> str:
    """For the terminal and for pasting into a ticket or a wiki page."""
    out = ["# 問い合わせ状況レポート", ""]
    out += [f"- {name}: {_md_cell(value)}" for name, value in _summary_rows(report)]
    out += ["", "## 回答できなかった・自信の低い質問", "", _grouping_note(report), ""]
    out += _md_table(_GROUP_HEAD, _group_rows(report))
    out += ["", "## 言い換え候補（alternates の提案）", ""]
    out += _md_table(_ALT_HEAD, _alternate_rows(report))
    out += ["", "## 項目別の状況", ""]
    out += _md_table(_ENTRY_HEAD, _entry_rows(report))
    out += ["", "## 日別・チャネル別", ""]
    out += _md_table(_day_head(report), _day_rows(report))
    return "\n".join(out) + "\n"


def _csv_cell(value: Cell) -> Cell:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def render_csv(report: Report) -> str:
    """One section per table ("# name", header, rows, blank line), for a spreadsheet.
    Text cells are always quoted, so no data line can be mistaken for a section line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    sections: list[tuple[str, Sequence[str], Iterable[Sequence[Cell]]]] = [
        ("summary", ["項目", "値"], _summary_rows(report)),
        ("unanswered_groups", _GROUP_HEAD, _group_rows(report)),
        ("suggested_alternates", _ALT_HEAD, _alternate_rows(report)),
        ("entries", _ENTRY_HEAD, _entry_rows(report)),
        ("daily_channels", _day_head(report), _day_rows(report)),
    ]
    for name, head, rows in sections:
        buffer.write(f"# {name}\n")
        writer.writerow(head)
        writer.writerows([_csv_cell(c) for c in row] for row in rows)
        buffer.write("\n")
    return buffer.getvalue()


def _daily_totals(report: Report) -> list[DayChannel]:
    from bot.report import ALL_CHANNELS

    return [d for d in report.days if d.channel == ALL_CHANNELS]


def chart_svg(report: Report) -> str:
    """The daily shares of answered / ambiguous / fallback as an inline SVG element.
    Labels are English so the default font has every glyph; text is drawn as paths, so
    the page needs no font."""
    from matplotlib.dates import DateFormatter, DayLocator, date2num
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    totals = _daily_totals(report)
    fig = Figure(figsize=(6.4, 3.0))
    ax = fig.subplots()
    days = [float(date2num(d.day)) for d in totals]
    for kind in CHART_KINDS:
        ax.plot(days, [d.share(kind) for d in totals], marker="o", markersize=3, label=kind, color=CHART_COLORS[kind])
    if not totals:
        ax.text(0.5, 0.5, "no asks in this period", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    if days:
        # Whole days only, at most about eight ticks, and room around a single day.
        ax.set_xlim(days[0] - 0.5, days[-1] + 0.5)
        ax.xaxis.set_major_locator(DayLocator(interval=max(1, round(days[-1] - days[0]) // 7)))
    ax.xaxis.set_major_formatter(DateFormatter("%m-%d"))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize="small", ncols=3)
    fig.autofmt_xdate()
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    fluid = r'<svg\1 style="width:100%;height:auto" role="img" aria-label="日別の判定の割合"'
    return _SVG_SIZE.sub(fluid, svg, count=1)


_CSS = """
body{font-family:system-ui,-apple-system,"Hiragino Sans","Noto Sans JP",sans-serif;margin:0 auto;
max-width:64rem;padding:1rem;line-height:1.5;color:#222}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ccc}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;min-width:100%;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4;white-space:nowrap}td{min-width:9em}td.n{min-width:0;text-align:right;white-space:nowrap}
.note{color:#555;font-size:.9rem}figure{margin:1rem 0}
@media (max-width:600px){body{padding:.5rem}table{font-size:.8rem}}
"""


def _html_table(head: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    body = [
        "<tr>"
        + "".join(
            f'<td class="n">{c}</td>' if isinstance(c, (int, float)) else f"<td>{html.escape(_text(c))}</td>"
            for c in row
        )
        + "</tr>"
        for row in rows
    ]
    if not body:
        return '<p class="note">（該当なし）</p>'
    head_html = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return f'<div class="scroll"><table><thead><tr>{head_html}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def render_html(report: Report) -> str:
    """One page to open on a phone or attach to a mail: no scripts, fonts or external files."""
    summary = "".join(f"<li>{html.escape(name)}: {html.escape(_text(value))}</li>" for name, value in _summary_rows(report))
    parts = [
        '<!DOCTYPE html>\n<html lang="ja"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>問い合わせ状況レポート {html.escape(_text(_when(report.end)))}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>問い合わせ状況レポート</h1>",
        f"<ul>{summary}</ul>",
        "<h2>日別の判定の割合</h2>",
        f"<figure>{chart_svg(report)}</figure>",
        "<h2>回答できなかった・自信の低い質問</h2>",
        f'<p class="note">{html.escape(_grouping_note(report))}</p>',
        _html_table(_GROUP_HEAD, _group_rows(report)),
        "<h2>言い換え候補（alternates の提案）</h2>",
        '<p class="note">候補から項目を選んだ・👍を付けた質問です。確認のうえ corpus/faq.yaml に追加してください。</p>',
        _html_table(_ALT_HEAD, _alternate_rows(report)),
        "<h2>項目別の状況</h2>",
        _html_table(_ENTRY_HEAD, _entry_rows(report)),
        "<h2>日別・チャネル別</h2>",
        _html_table(_day_head(report), _day_rows(report)),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


_YAML_HEADER = """\
# 言い換え候補（alternates）の提案です。自動では反映されません。
# 問い合わせログのうち、あいまいな回答や自信の低い回答の後に、利用者が候補から項目を選んだ・👍を付けた質問です。
# 一つずつ確認し、残すものだけを corpus/faq.yaml の該当項目の alternates に貼り付けてください。
# Proposed alternates from the query log, for an editor to review: never applied automatically.
# Each line is a query whose person chose the entry (or gave it a thumbs-up) after an uncertain reply.
# Keep only the ones that fit and paste them into the entry's alternates in corpus/faq.yaml.
"""


def _yaml_string(text: str) -> str:
    return yaml.safe_dump([text], allow_unicode=True, width=1_000_000).strip()


def suggested_alternates_yaml(report: Report) -> str:
    """The proposals as a YAML list of {id, alternates}, each with the entry's question as a comment."""
    lines = [_YAML_HEADER.rstrip("\n"), f"# 期間 / period: {_text(_when(report.start))} - {_text(_when(report.end))}"]
    if not report.alternates:
        lines += ["# 提案はありません / no proposals", "[]"]
    for entry in report.alternates:
        lines += ["", f"# {' '.join(entry.question.split())}", f"- id: {_yaml_string(entry.entry_id)[2:]}", "  alternates:"]
        for proposal in entry.proposals:
            item = _yaml_string(proposal.text)
            lines.append(f"  {item}  # {proposal.seen}回" if "\n" not in item else "  " + item.replace("\n", "\n  "))
    return "\n".join(lines) + "\n"
