"""Reading unit rosters as offices keep them, and writing their units as plan TOML."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bot.intake.roster import RosterError, clean, read_roster
from bot.intake.units_toml import make_key, replace_units, units_toml
from bot.plan import parse_plan

FIXTURES = Path(__file__).parent / "fixtures" / "intake"
ROSTER = FIXTURES / "roster-grassroots-2027.xlsx"


def test_sample_roster() -> None:
    roster = read_roster(ROSTER)
    names = [u.name for u in roster.units]
    assert names == [
        "甲县总工会",
        "乙区总工会",
        "丙市总工会",
        "丁区总工会",
        "市教育工会",
        "市机械冶金工会",
        "市交通运输工会",
        "第一钢铁集团工会",
        "市电力公司工会",
        "市公交集团工会",
    ]
    assert roster.kinds == ["县（市、区）总工会", "产业工会", "直属企业工会"]
    # Names padded with full-width spaces lose them; the note row at the bottom is no unit.
    assert [u.contact for u in roster.units][:3] == ["赵一", "钱二", "孙三"]
    assert roster.units[0].aliases == ("甲县",)
    assert roster.units[4].aliases == ("教育工会",)
    assert roster.units[7].aliases == ("第一钢铁集团",)


def test_phone_numbers_never_reach_the_plan() -> None:
    roster = read_roster(ROSTER)
    text = units_toml(roster)
    assert "138" not in text
    assert all("138" not in repr(u) for u in roster.units)
    assert "赵一" not in text  # contacts are for the invitation sheet only


def test_units_toml_is_a_valid_plan_part() -> None:
    text = units_toml(read_roster(ROSTER))
    data = tomllib.loads(text)
    assert len(data["units"]) == 10 and len(data["unit_kinds"]) == 3
    assert data["units"][0] == {
        "key": "jia-xian-zong-gong-hui",
        "name": "甲县总工会",
        "kind": "xian-shi-qu-zong-gong-hui",
        "aliases": ["甲县"],
    }
    plan = f"""
[campaign]
key = "c"
title = "t"
timezone = "Asia/Shanghai"

{text}

[[phases]]
key = "p"
name = "阶段"
start = 2027-03-01
end = 2027-03-31
"""
    parsed = parse_plan(plan, "p.toml")
    assert len(parsed.units) == 10


def _csv(tmp_path: Path, text: str, encoding: str) -> Path:
    path = tmp_path / "roster.csv"
    path.write_bytes(text.encode(encoding))
    return path


GBK_CSV = (
    "２０２６年安全生产联络员名单,,,,\r\n"
    "序号,单位名称,类别,联络员,\r\n"
    ",,,姓名,电话\r\n"
    "１,　第一中学　,学校,张　三,13900000001\r\n"
    "2,第二中学,学校,李四,0571-88888888\r\n"
    "3,实验小学,学校,,\r\n"
    "3,城关镇中心校,,王五,13900000003\r\n"
    ",,,,\r\n"
    "备注：电话仅供联系,,,,\r\n"
)


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig", "utf-8"])
def test_csv_in_gbk_or_utf8_with_a_two_row_header(tmp_path: Path, encoding: str) -> None:
    roster = read_roster(_csv(tmp_path, GBK_CSV, encoding), kind="学校")
    assert [(u.name, u.kind, u.contact) for u in roster.units] == [
        ("第一中学", "学校", "张三"),
        ("第二中学", "学校", "李四"),
        ("实验小学", "学校", ""),
        ("城关镇中心校", "学校", "王五"),
    ]
    assert "139" not in units_toml(roster) and "0571" not in units_toml(roster)


def test_a_unit_without_kind_needs_kind(tmp_path: Path) -> None:
    with pytest.raises(RosterError, match=r"row 7: 城关镇中心校: no unit kind \(give --kind\)"):
        read_roster(_csv(tmp_path, GBK_CSV, "gbk"))


def test_no_kind_column_at_all(tmp_path: Path) -> None:
    path = _csv(tmp_path, "单位名称,联系人\n甲公司,赵一\n乙公司,钱二\n", "utf-8")
    roster = read_roster(path, kind="企业")
    assert [(u.name, u.kind) for u in roster.units] == [("甲公司", "企业"), ("乙公司", "企业")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("姓名,电话\n赵一,1\n", "no header row"),
        ("单位名称,类别\n甲,县\n甲,县\n", "appears twice"),
        ("单位名称,类别\n", "no units"),
    ],
)
def test_bad_rosters(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(RosterError, match=message):
        read_roster(_csv(tmp_path, text, "utf-8"))


def test_other_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "roster.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(RosterError, match=r"\.xlsx or \.csv"):
        read_roster(path)
    broken = tmp_path / "roster.xlsx"
    broken.write_bytes(b"not a zip")
    with pytest.raises(RosterError, match=r"not a readable \.xlsx"):
        read_roster(broken)


def test_clean() -> None:
    assert clean("　赵\u3000一　") == "赵一"
    assert clean("Acme  Trade Union ") == "Acme Trade Union"
    assert clean("１２３ＡＢ（市）") == "123AB（市）"
    assert clean(13800000001.0) == "13800000001"


def test_keys_are_unique_and_valid() -> None:
    taken: set[str] = set()
    assert make_key("甲县总工会", taken) == "jia-xian-zong-gong-hui"
    assert make_key("甲县总工会", taken) == "jia-xian-zong-gong-hui-2"
    assert make_key("＃＃", taken) == "unit"
    assert make_key('A "quoted" = name', taken) == "a-quoted-name"


def test_odd_names_survive_toml(tmp_path: Path) -> None:
    path = _csv(tmp_path, '单位名称,类别\n"=A ""B"" \\ C",县\n', "utf-8")
    text = units_toml(read_roster(path))
    assert tomllib.loads(text)["units"][0]["name"] == '=A "B" \\ C'


def test_replace_units_keeps_the_rest() -> None:
    plan = (
        '[campaign]\nkey = "c"\n\n# the units\n[[unit_kinds]]\nkey = "old"\nname = "旧"\n\n'
        '[[units]]\nkey = "x"\nname = "X"\nkind = "old"\n\n[[phases]]\nkey = "p"\n'
    )
    out = replace_units(plan, '[[units]]\nkey = "new"\n')
    assert 'key = "old"' not in out and 'key = "x"' not in out
    assert out.index('key = "new"') < out.index("[[phases]]")
    assert "# the units" in out and '[campaign]\nkey = "c"' in out
