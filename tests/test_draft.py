"""`duban plan draft`: phases and deliverables from notices it has never seen (SPEC §3.1).

The three sample notices, and a corpus of invented ones in the genre (different bodies,
heading styles, tables, years, .docx and .pdf), each with what a person reads in it.
"""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

import pytest

from bot.intake.cndates import find_spans, first_day, last_day, normalize
from bot.intake.draft import Draft, draft_plan, draft_toml
from bot.intake.notice import NoticeError, read_notice
from bot.plan import parse_plan

HERE = Path(__file__).parent
SAMPLES = HERE / "fixtures" / "intake"
CORPUS = HERE / "fixtures" / "notices"
TODAY = date(2030, 6, 1)

D = date
Phase = tuple[str, date, date]
# A task: (phase name, title, due date or a repeat rule)
Task = tuple[str, str, object]


def draft(path: Path, year: int | None = None) -> Draft:
    return draft_plan(read_notice(path), year=year, today=TODAY)


def phases_of(d: Draft) -> list[Phase]:
    return [(p.name, p.start, p.end) for p in d.phases]


def tasks_of(d: Draft) -> list[Task]:
    out: list[Task] = []
    for phase in d.phases:
        for task in phase.tasks:
            when: object = task.repeat if task.repeat is not None else task.due
            if task.at is not None:
                when = (task.due, task.at)
            out.append((phase.name, task.title, when))
    return out


def checks_of(d: Draft) -> list[str]:
    return [c.kind for c in d.checks]


GRASSROOTS_PHASES = [
    ("启动部署", D(2027, 3, 1), D(2027, 3, 20)),
    ("摸底调研", D(2027, 3, 21), D(2027, 5, 31)),
    ("对标提升", D(2027, 6, 1), D(2027, 9, 30)),
    ("交流评估", D(2027, 10, 1), D(2027, 10, 31)),
    ("总结表彰", D(2027, 11, 1), D(2027, 11, 30)),
]
GRASSROOTS_TASKS = [
    ("启动部署", "活动方案", D(2027, 3, 20)),
    ("摸底调研", "基础台账", D(2027, 5, 31)),
    ("摸底调研", "调研报告", D(2027, 5, 31)),
    ("对标提升", "季度进展情况（6月30日）", D(2027, 6, 30)),
    ("对标提升", "季度进展情况（9月30日）", D(2027, 9, 30)),
    ("总结表彰", "工作总结及示范单位推荐表", D(2027, 11, 20)),
]

EXPECTED: dict[str, tuple[list[Phase], list[Task], list[str]]] = {
    "notice-grassroots-survey-2027.txt": (GRASSROOTS_PHASES, GRASSROOTS_TASKS, ["phase_vague"]),
    "notice-grassroots-survey-2027.docx": (GRASSROOTS_PHASES, GRASSROOTS_TASKS, ["phase_vague"]),
    "notice-school-safety-2026.txt": (
        [
            ("宣传发动", D(2026, 3, 2), D(2026, 3, 10)),
            ("自查自纠", D(2026, 3, 11), D(2026, 4, 15)),
            ("重点抽查", D(2026, 4, 11), D(2026, 5, 31)),
            ("整改落实", D(2026, 6, 1), D(2026, 6, 10)),
            ("总结提升", D(2026, 6, 11), D(2026, 6, 30)),
        ],
        [
            ("宣传发动", "实施方案及工作小组名单", D(2026, 3, 10)),
            ("自查自纠", "隐患排查周报", {"every": "week", "on": ["fri"], "at": "17:00"}),
            ("自查自纠", "自查报告", D(2026, 4, 15)),
            ("整改落实", "整改台账（附整改前后照片）", D(2026, 6, 10)),
            ("总结提升", "工作总结", D(2026, 6, 30)),
        ],
        ["phase_vague", "phase_vague"],
    ),
    "notice-workplace-safety-2026.txt": (
        [
            ("动员部署", D(2026, 11, 16), D(2026, 11, 30)),
            ("全面排查", D(2026, 12, 1), D(2027, 1, 31)),
            ("节前检查", D(2027, 2, 1), D(2027, 2, 10)),
            ("总结验收", D(2027, 2, 21), D(2027, 3, 10)),
        ],
        [
            ("动员部署", "工作方案和联络员名单", D(2026, 11, 30)),
            ("全面排查", "排查整治情况统计表", {"every": "month", "on": [25]}),
            ("节前检查", "检查情况", D(2027, 2, 5)),
            ("总结验收", "书面总结", D(2027, 3, 10)),
        ],
        ["phase_vague", "phase_vague", "phase_vague"],
    ),
}

CORPUS_EXPECTED: dict[str, tuple[list[Phase], list[Task], list[str]]] = {
    # SPEC §1's campaign, written as a notice: five phases and two dated reports.
    "seed-stability-2017.txt": (
        [
            ("动员部署", D(2017, 3, 30), D(2017, 4, 10)),
            ("调查研究", D(2017, 4, 10), D(2017, 5, 10)),
            ("排查化解", D(2017, 5, 11), D(2017, 6, 25)),
            ("督促检查", D(2017, 6, 26), D(2017, 7, 31)),
            ("总结落实", D(2017, 8, 1), D(2017, 8, 31)),
        ],
        [
            ("调查研究", "书面调研报告", D(2017, 5, 10)),
            ("排查化解", "排查化解专项报告（附典型经验材料）", D(2017, 6, 25)),
        ],
        ["undated", "undated"],
    ),
    # 第一阶段： headings, Chinese numerals, two days a month, 分别于…和…, a loose deadline.
    "stats-progress-2028.txt": (
        [
            ("摸底建库", D(2028, 3, 1), D(2028, 3, 20)),
            ("跟踪报送", D(2028, 3, 21), D(2028, 9, 30)),
            ("总结评估", D(2028, 10, 1), D(2028, 10, 31)),
        ],
        [
            ("摸底建库", "重点项目清单", D(2028, 3, 20)),
            ("摸底建库", "联络员名单", D(2028, 3, 5)),
            ("跟踪报送", "项目进展情况", {"every": "month", "on": [10, 20]}),
            ("跟踪报送", "阶段性报告（6月30日）", D(2028, 6, 30)),
            ("跟踪报送", "阶段性报告（9月30日）", D(2028, 9, 30)),
            ("总结评估", "年度评估报告", D(2028, 10, 25)),
        ],
        ["phase_vague"],
    ),
    # 1.准备阶段(…): ASCII parentheses and colons, full-width digits, 以前, 每星期一12时前.
    "audit-2025.txt": (
        [
            ("准备", D(2025, 9, 1), D(2025, 9, 10)),
            ("自查", D(2025, 9, 11), D(2025, 10, 31)),
            ("抽查", D(2025, 11, 1), D(2025, 11, 30)),
            ("整改", D(2025, 12, 1), D(2025, 12, 25)),
        ],
        [
            ("准备", "自查工作方案", D(2025, 9, 10)),
            ("自查", "自查进度周报", {"every": "week", "on": ["mon"], "at": "12:00"}),
            ("整改", "整改报告", D(2025, 12, 20)),
        ],
        ["phase_vague", "phase_vague"],
    ),
    # 一、 headings with the dates on the next line (时间：…), or after a colon; 上月.
    "library-2032.txt": (
        [
            ("筹备启动", D(2032, 4, 1), D(2032, 4, 15)),
            ("集中推广", D(2032, 4, 16), D(2032, 6, 30)),
            ("总结评估", D(2032, 7, 1), D(2032, 7, 20)),
        ],
        [
            ("筹备启动", "活动方案", D(2032, 4, 12)),
            ("集中推广", "活动开展情况统计表", {"every": "month", "on": [5]}),
            ("总结评估", "活动总结及影像资料", D(2032, 7, 15)),
        ],
        [],
    ),
    # A Markdown-style table without a deliverables column: deadlines inside the tasks.
    "housing-2033.txt": (
        [
            ("调查摸底", D(2033, 5, 1), D(2033, 5, 31)),
            ("集中攻坚", D(2033, 6, 1), D(2033, 8, 31)),
            ("验收总结", D(2033, 9, 1), D(2033, 9, 30)),
        ],
        [
            ("调查摸底", "摸底统计表", D(2033, 5, 31)),
            ("集中攻坚", "攻坚进展", {"every": "week", "on": ["mon"]}),
            ("集中攻坚", "攻坚成效报告", D(2033, 8, 25)),
            ("验收总结", "总结报告", D(2033, 9, 20)),
        ],
        ["phase_vague"],
    ),
    # No enumerators, 阶段(2007年3月中旬): headings, the notice dated in Chinese numerals.
    "water-2007.txt": (
        [
            ("动员部署", D(2007, 3, 11), D(2007, 3, 20)),
            ("组织实施", D(2007, 3, 21), D(2007, 10, 31)),
            ("检查验收", D(2007, 11, 1), D(2007, 11, 30)),
        ],
        [
            ("动员部署", "工作方案", D(2007, 3, 20)),
            ("组织实施", "工程进度月报", {"every": "month", "on": [25]}),
            ("检查验收", "验收申请报告", D(2007, 11, 20)),
        ],
        ["phase_vague", "phase_vague", "phase_vague"],
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_notices(name: str) -> None:
    phases, tasks, checks = EXPECTED[name]
    d = draft(SAMPLES / name)
    got_phases = phases_of(d)
    for expected in phases:
        assert expected in got_phases
    assert len(got_phases) == len(phases)
    got_tasks = tasks_of(d)
    for task in tasks:
        assert task in got_tasks
    assert len(got_tasks) == len(tasks)
    assert sorted(checks_of(d)) == sorted(checks)


@pytest.mark.parametrize("name", sorted(CORPUS_EXPECTED))
def test_corpus_notices(name: str) -> None:
    phases, tasks, checks = CORPUS_EXPECTED[name]
    d = draft(CORPUS / name)
    assert phases_of(d) == phases
    assert sorted(tasks_of(d), key=repr) == sorted(tasks, key=repr)
    assert sorted(checks_of(d)) == sorted(checks)


def test_a_docx_with_a_table_across_the_year_end(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("关于开展冬季消防安全集中整治的工作方案")
    document.add_paragraph("为做好今冬明春消防安全工作，决定开展集中整治，安排如下。")
    table = document.add_table(rows=4, cols=4)
    rows = [
        ("步骤", "时间安排", "工作内容", "报送材料"),
        ("部署启动", "2029年11月1日至11月15日", "制定方案，明确分工", "工作方案，11月15日前"),
        ("集中整治", "11月16日至2030年1月15日", "逐一检查", "整治进展，12月15日前、1月15日前"),
        ("巩固提升", "2030年1月中旬至2月底", "建立长效机制", "总结报告，2月28日前"),
    ]
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            table.cell(r, c).text = value
    document.add_paragraph("县消防安全委员会办公室")
    document.add_paragraph("2029年10月20日")
    path = tmp_path / "winter.docx"
    document.save(str(path))
    d = draft(path)
    assert phases_of(d) == [
        ("部署启动", D(2029, 11, 1), D(2029, 11, 15)),
        ("集中整治", D(2029, 11, 16), D(2030, 1, 15)),
        ("巩固提升", D(2030, 1, 11), D(2030, 2, 28)),
    ]
    assert tasks_of(d) == [
        ("部署启动", "工作方案", D(2029, 11, 15)),
        ("集中整治", "整治进展（12月15日）", D(2029, 12, 15)),
        ("集中整治", "整治进展（1月15日）", D(2030, 1, 15)),
        ("巩固提升", "总结报告", D(2030, 2, 28)),
    ]
    assert d.title == "冬季消防安全集中整治"


PDF_NOTICE = [
    "关于开展夏季防汛安全检查的通知",
    "各单位：为切实做好今年汛期安全工作，确保人民群众生命财产安全，经研究决定开展夏季防汛"
    "安全检查，现将有关事项通知如下。",
    "一、工作安排",
    "（一）准备阶段（5月10日前）。各单位完成人员物资准备，5月10日前报送防汛预案。",
    "（二）巡查阶段（5月下旬-8月）。各单位每周五前报送巡查情况周报。",
    "（三）总结阶段（9月1日至9月15日）。9月15日前报送工作总结。",
    "二、工作要求",
    "各单位要落实值班值守制度。",
]


def test_a_pdf_text_layer_without_a_year(tmp_path: Path) -> None:
    from fpdf import FPDF

    from bot.reports.fonts import cjk_font_path

    pdf = FPDF(format="A4")
    pdf.add_font("cjk", fname=str(cjk_font_path()))
    pdf.add_page()
    pdf.set_font("cjk", size=12)
    for line in PDF_NOTICE:
        pdf.multi_cell(120, 7, line)  # narrow: the long lines wrap and must be joined again
    path = tmp_path / "flood.pdf"
    pdf.output(str(path))

    without = draft(path)
    assert "no_year" in checks_of(without)
    assert without.phases[0].end == D(TODAY.year, 5, 10)

    d = draft(path, year=2031)
    assert phases_of(d)[1:] == [
        ("巡查", D(2031, 5, 21), D(2031, 8, 31)),
        ("总结", D(2031, 9, 1), D(2031, 9, 15)),
    ]
    assert d.phases[0].name == "准备" and d.phases[0].end == D(2031, 5, 10)
    assert tasks_of(d) == [
        ("准备", "防汛预案", D(2031, 5, 10)),
        ("巡查", "巡查情况周报", {"every": "week", "on": ["fri"]}),
        ("总结", "工作总结", D(2031, 9, 15)),
    ]
    assert sorted(checks_of(d)) == ["phase_by_end", "phase_vague"]


def test_a_deliverable_outside_its_phase_is_allowed_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "n.txt"
    path.write_text(
        "关于开展测试工作的通知\n"
        "（一）总结阶段（2030年8月1日至8月31日）\n"
        "各单位于7月25日前报送工作总结。\n",
        encoding="utf-8",
    )
    d = draft(path)
    task = d.phases[0].tasks[0]
    assert (task.title, task.due, task.allow_outside) == ("工作总结", D(2030, 7, 25), True)
    assert checks_of(d) == ["outside"]
    text = draft_toml(d, source="n.txt", lang="zh")
    assert "allow_outside_phase = true" in text
    assert "不在阶段「总结」" in text


def test_the_draft_is_a_plan_once_units_are_added(tmp_path: Path) -> None:
    from bot.intake.roster import read_roster
    from bot.intake.units_toml import units_toml

    units = units_toml(read_roster(SAMPLES / "roster-grassroots-2027.xlsx"))
    for path in [*SAMPLES.glob("notice-*"), *CORPUS.glob("*.txt")]:
        d = draft(path)
        text = draft_toml(d, source=path.name, lang="en", units=units)
        plan = parse_plan(text, path.name)
        assert len(plan.phases) == len(d.phases)
        # Every drafted phase and task quotes the sentence it came from.
        assert text.count("# 「") == len(d.phases) + sum(len(p.tasks) for p in d.phases)


def test_unreadable_notices(tmp_path: Path) -> None:
    for name, data, message in [
        ("n.doc", b"x", "a notice is a .txt, .docx or .pdf"),
        ("n.docx", b"not a zip", "not a readable .docx"),
        ("n.pdf", b"%PDF-1.4 broken", "not a readable .pdf"),
        ("n.txt", b"  \n", "no text found"),
    ]:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(NoticeError, match=message):
            read_notice(path)
    gbk = tmp_path / "gbk.txt"
    gbk.write_bytes("（一）部署阶段（2030年3月1日至3月5日）\n".encode("gbk"))
    assert read_notice(gbk) == ["（一）部署阶段（2030年3月1日至3月5日）"]


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("3月30日至4月10日", D(2026, 3, 30), D(2026, 4, 10)),
        ("2026年3月2日—3月10日", D(2026, 3, 2), D(2026, 3, 10)),
        ("4月中旬至5月底", D(2026, 4, 11), D(2026, 5, 31)),
        ("6月上旬", D(2026, 6, 1), D(2026, 6, 10)),
        ("10月", D(2026, 10, 1), D(2026, 10, 31)),
        ("5月下旬-8月", D(2026, 5, 21), D(2026, 8, 31)),
        ("2月下旬至3月上旬", D(2026, 2, 21), D(2026, 3, 10)),
        ("2026年12月—2027年1月", D(2026, 12, 1), D(2027, 1, 31)),
        ("2026年12月—1月", D(2026, 12, 1), D(2027, 1, 31)),
        ("３月３０日至４月１０日", D(2026, 3, 30), D(2026, 4, 10)),
        ("三月三十日至四月十日", D(2026, 3, 30), D(2026, 4, 10)),
        ("二〇二六年十二月一日至十二月三十一日", D(2026, 12, 1), D(2026, 12, 31)),
        ("2月下旬", D(2026, 2, 21), D(2026, 2, 28)),
        ("11月16日至30日", D(2026, 11, 16), D(2026, 11, 30)),
    ],
)
def test_date_forms(text: str, start: date, end: date) -> None:
    spans = find_spans(normalize(text))
    assert len(spans) == 1
    span = spans[0]
    assert first_day(span.start, 2026) == start
    y = span.end.year or (2026 if span.end.month >= span.start.month else 2027)
    assert last_day(span.end, y) == end


def test_a_deadline_and_a_time() -> None:
    (span,) = find_spans(normalize("6月10日前"))
    assert span.deadline and last_day(span.end, 2026) == D(2026, 6, 10)
    (point,) = find_spans(normalize("6月底"))
    assert last_day(point.end, 2026) == D(2026, 6, 30)
    assert normalize("进一步统一部署，３月") == "进一步统一部署，3月"  # numerals only in dates


def test_a_dated_time_of_day_becomes_a_date_time(tmp_path: Path) -> None:
    path = tmp_path / "n.txt"
    path.write_text(
        "关于开展测试工作的通知\n（一）上报阶段（2030年3月1日至3月10日）\n各单位于3月10日17:30前报送统计表。\n",
        encoding="utf-8",
    )
    d = draft(path)
    assert tasks_of(d) == [("上报", "统计表", (D(2030, 3, 10), time(17, 30)))]
    assert "due = 2030-03-10T17:30:00" in draft_toml(d, source="n.txt", lang="zh")


def test_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli.main import main

    out = tmp_path / "plan.toml"
    roster = SAMPLES / "roster-grassroots-2027.xlsx"
    notice = SAMPLES / "notice-school-safety-2026.txt"
    assert main(["plan", "draft", str(notice), "--units", str(roster), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "5 个阶段，5 项任务" in printed
    assert "隐患排查周报  every week fri 17:00" in printed
    assert "请核对以下 2 处" in printed and "4月中旬至5月底" in printed
    text = out.read_text(encoding="utf-8")
    assert "# 请核对以下 2 处" in text and 'name = "甲县总工会"' in text
    assert main(["plan", "check", str(out)]) == 0
    assert "10 个单位" in capsys.readouterr().out

    assert main(["plan", "draft", str(tmp_path / "missing.docx"), "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.docx" in err[0]
    assert main(["plan", "draft", str(notice), "--year", "1999", "-o", str(out)]) == 1
    assert "--year" in capsys.readouterr().err


def test_sentence_forms(tmp_path: Path) -> None:
    path = tmp_path / "n.txt"
    path.write_text(
        "\n".join(
            [
                "关于开展测试工作的通知",
                "（一）测试阶段（2030年3月1日至3月31日）",
                "各单位于3月5日前完成自查并报送自查报告。",
                "3月10日前，各单位将典型案例材料报送至区办公室。",
                "请于3月15日之前填报《安全生产统计表》。",
                "整改清单须在3月20日前报区安委办。",
                "3月25日前上报工作总结和下一步计划。",
                "各单位3月28日17时前通过邮箱报送问题台账。",
                "3月30日前完成整改。",
            ]
        ),
        encoding="utf-8",
    )
    assert tasks_of(draft(path)) == [
        ("测试", "自查报告", D(2030, 3, 5)),
        ("测试", "典型案例材料", D(2030, 3, 10)),
        ("测试", "安全生产统计表", D(2030, 3, 15)),
        ("测试", "整改清单", D(2030, 3, 20)),
        ("测试", "工作总结和下一步计划", D(2030, 3, 25)),
        ("测试", "问题台账", (D(2030, 3, 28), time(17, 0))),
    ]


HEADINGS = [
    "（{n}）{name}阶段（{a}至{b}）",
    "{n}．{name}（{a}—{b}）。",
    "第{n}阶段：{name}（{a}）",
    "{name}阶段({a}):",
    "{n}、{name}阶段",
    "时间：{a}至{b}。",
    "| {name} | {a}—{b} | 工作 | 材料，{c}前 |",
    "| 阶段 | 时间 | 主要任务 | 报送材料及时限 |",
]
SENTENCES = [
    "各单位于{c}前报送{thing}。",
    "{c}前将{thing}报区办公室。",
    "每周{w}17:00前报送{thing}。",
    "每月{d}日前报送{thing}。",
    "分别于{a}和{b}报送{thing}。",
    "{thing}于{c}前报县安委办。",
    "各单位要形成{thing}。",
    "市总工会组织检查。",
    "四、工作要求",
    "２０２９年１月８日",
]


def test_any_notice_drafts_to_a_plan(tmp_path: Path) -> None:
    """Whatever the notice says, the draft is a valid plan once units are added."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from bot.intake.roster import read_roster
    from bot.intake.units_toml import units_toml

    units = units_toml(read_roster(SAMPLES / "roster-grassroots-2027.xlsx"))
    month = st.integers(1, 12)
    day = st.integers(1, 31)
    part = st.sampled_from(["上旬", "中旬", "下旬", "底", "", "1日", "15日", "31日"])
    point = st.builds(lambda m, p: f"{m}月{p}", month, part)
    field = st.fixed_dictionaries(
        {
            "n": st.sampled_from(["一", "二", "1", "3"]),
            "name": st.sampled_from(["动员部署", "自查", "节前检查", "总结"]),
            "a": point,
            "b": point,
            "c": point,
            "w": st.sampled_from(list("一二三四五六日")),
            "d": day,
            "thing": st.sampled_from(["工作方案", "书面调研报告", "统计表（附件）", "“x”情况"]),
        }
    )
    line = st.builds(
        lambda template, values: template.format(**values),
        st.sampled_from(HEADINGS + SENTENCES),
        field,
    )

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(line, min_size=1, max_size=12), st.sampled_from([None, 2030]))
    def check(lines: list[str], year: int | None) -> None:
        d = draft_plan(["关于开展测试工作的通知", *lines], year=year, today=TODAY)
        text = draft_toml(d, source="n.txt", lang="zh", units=units)
        parse_plan(text, "n.toml")  # raises PlanInvalid with the errors if not

    check()
